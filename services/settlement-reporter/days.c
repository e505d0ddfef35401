/* UTC days: settlement aggregates are per calendar day in UTC, whatever
 * the operator's time zone, so every party computes the same key. */
#include "settlement.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void utc_day(int64_t ms, char out[11]) {
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

int64_t utc_day_start(const char *day) {
    struct tm tm = {0};
    const char *rest = strptime(day, "%Y-%m-%d", &tm);
    if (!rest || *rest || strlen(day) != 10) return -1;
    return (int64_t)timegm(&tm) * 1000;
}
