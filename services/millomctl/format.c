/* Readable rows of the settlement topics: CSV for spreadsheets (RFC 4180
 * quoting, a header row, amounts as decimal strings) or one JSON object
 * per line for jq. Never floats: amounts come as minor units plus scale. */
#include "millomctl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "shared/contracts/fund_source.h"
#include "shared/contracts/money.h"
#include "shared/plumbing/clock.h"

void decimal_text(int64_t minor, int scale, char out[48]) {
    if (money_format(minor, scale, out, 48) < 0) snprintf(out, 48, "%" PRId64, minor);
}

void csv_write_field(FILE *out, const char *s) {
    if (!s) s = "";
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"') fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void time_text(int64_t ms, char out[32]) {
    if (ms <= 0) {
        out[0] = '\0';
        return;
    }
    clock_rfc3339_ms(ms, out, 32);
}

/* Fields separated by commas, the row ended by CRLF. */
static void csv_row(FILE *out, const char *const *fields, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (i) fputc(',', out);
        csv_write_field(out, fields[i]);
    }
    fputs("\r\n", out);
}

static void json_line(FILE *out, json_t *o) {
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text) {
        fputs(text, out);
        fputc('\n', out);
        free(text);
    }
    json_decref(o);
}

/* A value of a newer producer is shown, not hidden behind a known name. */
static const char *fund_name(Millom__V1__FundSource f) {
    const char *name = fund_source_name(f);
    return name ? name : "UNKNOWN";
}

void print_record_header(FILE *out, out_format f) {
    static const char *const h[] = {
        "transid",       "operator",      "serviceProvider", "planId",      "subscriberHash",
        "amount",        "currency",      "fundSource",      "completedAt", "day",
        "operatorShare", "providerShare", "millomShare"};
    if (f == OUT_CSV) csv_row(out, h, sizeof h / sizeof h[0]);
}

void print_record(FILE *out, out_format f, const Millom__V1__SettlementRecord *r) {
    char amount[48], os[48], ps[48], ms[48], at[32];
    int scale = r->currency_scale;
    /* The record's own decimal is authoritative when present. */
    if (r->amount && *r->amount)
        snprintf(amount, sizeof amount, "%s", r->amount);
    else
        decimal_text(r->amount_minor, scale, amount);
    decimal_text(r->operator_share_minor, scale, os);
    decimal_text(r->provider_share_minor, scale, ps);
    decimal_text(r->millom_share_minor, scale, ms);
    time_text(r->completed_at_ms, at);
    if (f == OUT_CSV) {
        const char *row[] = {r->transid,
                             r->operator_,
                             r->service_provider,
                             r->plan_id,
                             r->subscriber_hash,
                             amount,
                             r->currency,
                             fund_name(r->fund_source),
                             at,
                             r->day,
                             os,
                             ps,
                             ms};
        csv_row(out, row, sizeof row / sizeof row[0]);
        return;
    }
    json_line(out, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "transid",
                             r->transid, "operator", r->operator_, "serviceProvider",
                             r->service_provider, "planId", r->plan_id, "subscriberHash",
                             r->subscriber_hash, "amount", amount, "currency", r->currency,
                             "fundSource", fund_name(r->fund_source), "completedAt", at, "day",
                             r->day, "operatorShare", os, "providerShare", ps, "millomShare", ms));
}

void print_report_header(FILE *out, out_format f) {
    static const char *const h[] = {
        "day",    "operator",  "serviceProvider", "currency",      "planId",
        "count",  "gross",     "operatorShare",   "providerShare", "millomShare",
        "closed", "lateCount", "updatedAt"};
    if (f == OUT_CSV) csv_row(out, h, sizeof h / sizeof h[0]);
}

void print_report(FILE *out, out_format f, const Millom__V1__SettlementReport *r) {
    int scale = r->currency_scale;
    char g[48], os[48], ps[48], ms[48], at[32], count[24], late[24];
    time_text(r->updated_at_ms, at);
    snprintf(late, sizeof late, "%" PRId64, r->late_count);
    if (f == OUT_CSV) {
        for (size_t i = 0; i < r->n_plans; i++) {
            const Millom__V1__PlanTotal *p = r->plans[i];
            snprintf(count, sizeof count, "%" PRId64, p->count);
            decimal_text(p->gross_minor, scale, g);
            decimal_text(p->operator_share_minor, scale, os);
            decimal_text(p->provider_share_minor, scale, ps);
            decimal_text(p->millom_share_minor, scale, ms);
            const char *row[] = {r->day,
                                 r->operator_,
                                 r->service_provider,
                                 r->currency,
                                 p->plan_id,
                                 count,
                                 g,
                                 os,
                                 ps,
                                 ms,
                                 r->closed ? "true" : "false",
                                 late,
                                 at};
            csv_row(out, row, sizeof row / sizeof row[0]);
        }
        return;
    }
    json_t *plans = json_array();
    for (size_t i = 0; i < r->n_plans; i++) {
        const Millom__V1__PlanTotal *p = r->plans[i];
        decimal_text(p->gross_minor, scale, g);
        json_array_append_new(plans, json_pack("{s:s,s:I,s:s}", "planId", p->plan_id, "count",
                                               (json_int_t)p->count, "gross", g));
    }
    decimal_text(r->gross_minor, scale, g);
    decimal_text(r->operator_share_minor, scale, os);
    decimal_text(r->provider_share_minor, scale, ps);
    decimal_text(r->millom_share_minor, scale, ms);
    json_line(out, json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:b,s:I,s:s,s:o}", "day", r->day,
                             "operator", r->operator_, "serviceProvider", r->service_provider,
                             "currency", r->currency, "count", (json_int_t)r->count, "gross", g,
                             "operatorShare", os, "providerShare", ps, "millomShare", ms, "closed",
                             (int)r->closed, "lateCount", (json_int_t)r->late_count, "updatedAt",
                             at, "plans", plans));
}
