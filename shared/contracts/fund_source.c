/* See fund_source.h. */
#include "fund_source.h"

#include <string.h>

static const struct {
    Millom__V1__FundSource value;
    const char *name;
} fund_sources[] = {
    {MILLOM__V1__FUND_SOURCE__FUND_SOURCE_WALLET, "WALLET"},
    {MILLOM__V1__FUND_SOURCE__FUND_SOURCE_EWALLET, "EWALLET"},
    {MILLOM__V1__FUND_SOURCE__FUND_SOURCE_LOAN, "LOAN"},
    {MILLOM__V1__FUND_SOURCE__FUND_SOURCE_FREE, "FREE"},
};
#define N_FUND_SOURCES (sizeof fund_sources / sizeof fund_sources[0])

const char *fund_source_name(Millom__V1__FundSource f) {
    for (size_t i = 0; i < N_FUND_SOURCES; i++)
        if (fund_sources[i].value == f) return fund_sources[i].name;
    return NULL;
}

int fund_source_parse(const char *name, Millom__V1__FundSource *out) {
    if (!name) return -1;
    for (size_t i = 0; i < N_FUND_SOURCES; i++) {
        if (strcmp(fund_sources[i].name, name) == 0) {
            *out = fund_sources[i].value;
            return 0;
        }
    }
    return -1;
}
