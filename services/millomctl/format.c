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

/* ------------------------------------------------ rows of the operator commands */

int parse_format(const char *s, out_format *f) {
    if (!s) return -1;
    if (strcmp(s, "table") == 0)
        *f = OUT_TABLE;
    else if (strcmp(s, "csv") == 0)
        *f = OUT_CSV;
    else if (strcmp(s, "json") == 0)
        *f = OUT_JSON;
    else
        return -1;
    return 0;
}

/* A cell as text (caller frees): strings as they are, numbers and booleans
 * as JSON writes them, arrays of strings joined by ",", null as "". */
static char *cell_text(json_t *v) {
    if (!v || json_is_null(v)) return strdup("");
    if (json_is_string(v)) return strdup(json_string_value(v));
    if (json_is_array(v)) {
        size_t len = 1, i;
        json_t *e;
        json_array_foreach(v, i, e) {
            char *t = cell_text(e);
            len += (t ? strlen(t) : 0) + 1;
            free(t);
        }
        char *out = calloc(1, len);
        if (!out) return NULL;
        json_array_foreach(v, i, e) {
            char *t = cell_text(e);
            if (i) strcat(out, ",");
            if (t) strcat(out, t);
            free(t);
        }
        return out;
    }
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* A left-aligned table cell, two spaces after it, or a newline after the last. */
static void table_cell(FILE *out, const char *text, size_t width, int last) {
    if (!text) text = "";
    if (last)
        fprintf(out, "%s\n", text);
    else
        fprintf(out, "%-*s  ", (int)width, text);
}

void print_rows(FILE *out, out_format f, const char *const *columns, json_t *rows) {
    size_t n_cols = 0;
    while (columns[n_cols]) n_cols++;
    size_t i;
    json_t *row;
    if (f == OUT_JSON) {
        json_array_foreach(rows, i, row) json_line(out, json_incref(row));
        return;
    }
    size_t n_rows = json_array_size(rows);
    char **cells = calloc(n_rows * n_cols + 1, sizeof *cells);
    size_t *width = calloc(n_cols, sizeof *width);
    if (!cells || !width) {
        free(cells);
        free(width);
        fprintf(stderr, "millomctl: out of memory\n");
        return;
    }
    for (size_t c = 0; c < n_cols; c++) width[c] = strlen(columns[c]);
    json_array_foreach(rows, i, row) {
        for (size_t c = 0; c < n_cols; c++) {
            char *t = cell_text(json_object_get(row, columns[c]));
            cells[i * n_cols + c] = t;
            if (t && strlen(t) > width[c]) width[c] = strlen(t);
        }
    }
    if (f == OUT_CSV) {
        csv_row(out, columns, n_cols);
        for (size_t r = 0; r < n_rows; r++)
            csv_row(out, (const char *const *)cells + r * n_cols, n_cols);
    } else {
        /* A header, then left-aligned columns two spaces apart. */
        for (size_t c = 0; c < n_cols; c++) table_cell(out, columns[c], width[c], c + 1 == n_cols);
        for (size_t r = 0; r < n_rows; r++)
            for (size_t c = 0; c < n_cols; c++)
                table_cell(out, cells[r * n_cols + c], width[c], c + 1 == n_cols);
    }
    for (size_t k = 0; k < n_rows * n_cols; k++) free(cells[k]);
    free(cells);
    free(width);
}

void print_object(FILE *out, out_format f, json_t *object) {
    if (f == OUT_JSON) {
        json_line(out, json_incref(object));
        return;
    }
    if (f == OUT_CSV) {
        /* One header row of the object's fields, one row of their values. */
        size_t n = json_object_size(object), k = 0;
        const char **names = calloc(n + 1, sizeof *names);
        char **values = calloc(n + 1, sizeof *values);
        const char *name;
        json_t *v;
        if (names && values) {
            json_object_foreach(object, name, v) {
                names[k] = name;
                values[k++] = cell_text(v);
            }
            csv_row(out, names, k);
            csv_row(out, (const char *const *)values, k);
        }
        for (size_t i = 0; i < k; i++) free(values[i]);
        free(names);
        free(values);
        return;
    }
    /* Table: one "field  value" line per field. */
    size_t width = 0;
    const char *name;
    json_t *v;
    json_object_foreach(object, name, v) if (strlen(name) > width) width = strlen(name);
    json_object_foreach(object, name, v) {
        char *t = cell_text(v);
        fprintf(out, "%-*s  %s\n", (int)width, name, t ? t : "");
        free(t);
    }
}
