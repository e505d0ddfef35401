/* Operator backend JSON -> standard API JSON. See mapping_backend.h for the
 * mapping choices. Pure: no I/O. */
#include "services/offer-resolver/mapping_backend.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/text.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "shared/contracts/fund_source.h"
#include "shared/contracts/backend_errors.h"
#include "shared/plumbing/errors.h"
#include "shared/contracts/money.h"
#include "shared/contracts/offer_context.h"

/* ---------------------------------------------------------------- helpers */

static void clear_err(char *err, size_t errlen) {
    if (err && errlen > 0) err[0] = '\0';
}

/* Counts dropped items and remembers the first reason. */
typedef struct {
    int count;
    char first[160];
} drops;

static void drop(drops *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void drop(drops *d, const char *fmt, ...) {
    if (d->count++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->first, sizeof d->first, fmt, ap);
        va_end(ap);
    }
}

static void report_drops(const drops *d, const char *what, char *err, size_t errlen) {
    if (d->count == 0)
        clear_err(err, errlen);
    else
        text_printf(err, errlen, "dropped %d malformed %s(s); first: %s", d->count, what, d->first);
}

/* A non-empty string without embedded NULs. */
static bool nonempty_string(const json_t *v) {
    return json_is_string(v) && json_string_length(v) > 0 &&
           strlen(json_string_value(v)) == json_string_length(v);
}

static const char *language_of(const mapping_ctx *m) {
    if (m->language && m->language[0]) return m->language;
    if (m->op->default_language && m->op->default_language[0]) return m->op->default_language;
    return "en";
}

static int scale_of(const mapping_ctx *m) {
    int s = m->op->currency_scale;
    return s < 0 ? 0 : s;
}

/* [{"language": lang, "text": text}] */
static json_t *multilingual(const char *lang, const char *text) {
    json_t *item = json_pack("{s:s, s:s}", "language", lang, "text", text);
    json_t *arr = json_array();
    if (!item || !arr || json_array_append_new(arr, item) != 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

/* A backend money value (JSON number or decimal string) to minor units. */
static int money_value(const json_t *value, int scale, int64_t *minor) {
    if (json_is_number(value)) return money_from_json(value, scale, minor);
    if (json_is_string(value)) return money_parse(json_string_value(value), scale, minor);
    return -1;
}

static json_t *money_string(int64_t minor, int scale) {
    char buf[48];
    if (money_format(minor, scale, buf, sizeof buf) < 0) return NULL;
    return json_string(buf);
}

/* A backend money object {currency?, value} to minor units. currency gets
 * the object's currency or NULL. -1 with a reason in why. */
static int money_object(const json_t *obj, int scale, int64_t *minor, const char **currency,
                        const char **why) {
    if (!json_is_object(obj)) {
        *why = "is not an object";
        return -1;
    }
    const json_t *cur = json_object_get(obj, "currency");
    if (cur && !json_is_null(cur) && !json_is_string(cur)) {
        *why = "currency is not a string";
        return -1;
    }
    *currency = nonempty_string(cur) ? json_string_value(cur) : NULL;
    const json_t *value = json_object_get(obj, "value");
    if (!value) {
        *why = "value is missing";
        return -1;
    }
    if (money_value(value, scale, minor) != 0) {
        *why = "value is not a decimal amount";
        return -1;
    }
    return 0;
}

/* A JSON integer (or an integral real within range) as int64. */
static int json_int64(const json_t *v, int64_t *out) {
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        /* 2^63 itself is out of range; every double below it converts exactly. */
        if (isfinite(d) && d == floor(d) && d >= -9223372036854775808.0 &&
            d < 9223372036854775808.0) {
            *out = (int64_t)d;
            return 0;
        }
    }
    return -1;
}

static int64_t add_saturating(int64_t a, int64_t b) {
    if (b > 0 && a > INT64_MAX - b) return INT64_MAX;
    return a + b;
}

int64_t mapping_utc_second(int64_t ms) {
    int64_t secs = ms / 1000;
    if (ms % 1000 < 0) secs -= 1; /* floor for times before the epoch */
    return secs;
}

int mapping_rfc3339_utc(int64_t ms, char *buf, size_t buflen) {
    time_t t = (time_t)mapping_utc_second(ms);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) return -1;
    size_t n = strftime(buf, buflen, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return n == 0 ? -1 : (int)n;
}

static json_t *rfc3339_json(int64_t ms) {
    char buf[40];
    if (mapping_rfc3339_utc(ms, buf, sizeof buf) < 0) return NULL;
    return json_string(buf);
}

static int digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int days_in_month(int year, int month) {
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0)) return 29;
    return d[month - 1];
}

/* ISO 8601 extended date-time -> RFC 3339. Accepts
 *   YYYY-MM-DD(T|t| )hh:mm[:ss[(.|,)fraction]][Z|z|+hh[:mm]|-hh[:mm]|+hhmm]
 * With an offset: normalized to UTC "YYYY-MM-DDThh:mm:ss[.fraction]Z".
 * Without one: copied unchanged. -1 if not a valid date-time. */
static int normalize_datetime(const char *in, char *out, size_t outlen) {
    const char *p = in;
    int year, mon, day, hour, min, sec = 0;
    if (digits(&p, 4, &year) || *p++ != '-' || digits(&p, 2, &mon) || *p++ != '-' ||
        digits(&p, 2, &day))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ') return -1;
    p++;
    if (digits(&p, 2, &hour) || *p++ != ':' || digits(&p, 2, &min)) return -1;
    char frac[10] = "";
    if (*p == ':') {
        p++;
        if (digits(&p, 2, &sec)) return -1;
        if (*p == '.' || *p == ',') {
            p++;
            size_t n = 0;
            while (isdigit((unsigned char)*p)) {
                if (n < sizeof frac - 1) frac[n++] = *p;
                p++;
            }
            if (n == 0) return -1;
            frac[n] = '\0';
        }
    }
    if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hour > 23 || min > 59 ||
        sec > 60)
        return -1;

    int offset_min = 0;
    bool has_offset = false;
    if (*p == 'Z' || *p == 'z') {
        has_offset = true;
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int oh, om = 0;
        p++;
        if (digits(&p, 2, &oh)) return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &om)) return -1;
        } else if (isdigit((unsigned char)*p)) {
            if (digits(&p, 2, &om)) return -1;
        }
        if (oh > 23 || om > 59) return -1;
        has_offset = true;
        offset_min = sign * (oh * 60 + om);
    }
    if (*p != '\0') return -1;

    if (!has_offset) {
        size_t n = strlen(in);
        if (n + 1 > outlen) return -1;
        memcpy(out, in, n + 1);
        return 0;
    }

    struct tm tm = {0};
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    t -= (time_t)offset_min * 60;
    struct tm utc;
    if (!gmtime_r(&t, &utc) || utc.tm_year + 1900 < 0 || utc.tm_year + 1900 > 9999) return -1;
    int n = snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d%s%sZ", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                     frac[0] ? "." : "", frac);
    return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

/* subscriptionType -> accountType. 0 ok (*out NULL = omit), -1 unknown. */
static int account_type(const json_t *body, const char **out) {
    const json_t *st = json_object_get(body, "subscriptionType");
    *out = NULL;
    if (!st || json_is_null(st)) return 0;
    if (!json_is_string(st)) return -1;
    const char *s = json_string_value(st);
    if (strcmp(s, "PREPAID") == 0)
        *out = "PREPAID";
    else if (strcmp(s, "POSTPAID") == 0)
        *out = "POSTPAID";
    else if (strcmp(s, "UNSPECIFIED") != 0)
        return -1;
    return 0;
}

static bool ctx_ok(const mapping_ctx *m, const json_t *body, char *err, size_t errlen) {
    if (!m || !m->op) {
        text_printf(err, errlen, "mapping context without operator");
        return false;
    }
    if (!json_is_object(body)) {
        text_printf(err, errlen, "backend body is not a JSON object");
        return false;
    }
    return true;
}

/* Common to accountInfo and balance: accountType + main balance. */
static int account_basics(const mapping_ctx *m, const json_t *body, const char **acct,
                          int64_t *main_minor, const char **currency, char *err, size_t errlen) {
    if (account_type(body, acct) != 0) {
        text_printf(err, errlen, "subscriptionType: unknown value");
        return -1;
    }
    const char *why = NULL;
    const json_t *mb = json_object_get(body, "monetaryBalance");
    if (!mb) {
        text_printf(err, errlen, "monetaryBalance: missing");
        return -1;
    }
    if (money_object(mb, scale_of(m), main_minor, currency, &why) != 0) {
        text_printf(err, errlen, "monetaryBalance: %s", why);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ accountInfo */

/* An optional {currency, value} of the backend body (loanBalance,
 * ewalletBalance: extensions, see mapping_backend.h) appended to balances
 * as balance_type. 0 (also when absent), or -1 with err (malformed, or out
 * of memory). */
static int append_extra_balance(const json_t *body, const char *field, const char *balance_type,
                                int scale, json_t *balances, char *err, size_t errlen) {
    const json_t *v = json_object_get(body, field);
    if (!v || json_is_null(v)) return 0;
    int64_t minor;
    const char *cur, *why = NULL;
    if (money_object(v, scale, &minor, &cur, &why) != 0) {
        text_printf(err, errlen, "%s: %s", field, why);
        return -1;
    }
    json_t *b = json_object();
    int ok = b && json_object_set_new(b, "balanceType", json_string(balance_type)) == 0 &&
             json_object_set_new(b, "balance", money_string(minor, scale)) == 0 &&
             json_array_append(balances, b) == 0;
    json_decref(b);
    if (!ok) text_printf(err, errlen, "out of memory mapping accountInfo");
    return ok ? 0 : -1;
}

json_t *map_account_info(const mapping_ctx *m, const json_t *body, char *err, size_t errlen) {
    if (!ctx_ok(m, body, err, errlen)) return NULL;
    const char *acct, *currency;
    int64_t main_minor;
    if (account_basics(m, body, &acct, &main_minor, &currency, err, errlen) != 0) return NULL;
    int scale = scale_of(m);

    json_t *out = json_object();
    json_t *balances = json_array();
    json_t *main_bal = json_object();
    bool ok = out && balances && main_bal;
    if (ok && acct) ok = json_object_set_new(out, "accountType", json_string(acct)) == 0;
    if (ok) {
        const char *cur = currency ? currency : m->op->currency;
        if (cur) ok = json_object_set_new(out, "currency", json_string(cur)) == 0;
    }
    ok = ok && json_object_set_new(main_bal, "balanceType", json_string("main")) == 0 &&
         json_object_set_new(main_bal, "balance", money_string(main_minor, scale)) == 0;
    if (ok) {
        ok = json_array_append_new(balances, main_bal) == 0;
        main_bal = NULL;
    }

    if (ok &&
        (append_extra_balance(body, "loanBalance", "loan", scale, balances, err, errlen) != 0 ||
         append_extra_balance(body, "ewalletBalance", "ewallet", scale, balances, err, errlen) !=
             0)) {
        json_decref(main_bal);
        json_decref(balances);
        json_decref(out);
        return NULL;
    }
    if (ok) {
        ok = json_object_set_new(out, "balances", balances) == 0;
        balances = NULL;
    }
    ok = ok && json_object_set_new(out, "validUntil", rfc3339_json(m->valid_until_ms)) == 0;

    json_decref(main_bal);
    json_decref(balances);
    if (!ok) {
        json_decref(out);
        text_printf(err, errlen, "out of memory mapping accountInfo");
        return NULL;
    }
    clear_err(err, errlen);
    return out;
}

/* ---------------------------------------------------------------- balance */

/* Lowercased appType list, default ["generic"]. NULL on bad shape. */
static json_t *applications(const json_t *app_type) {
    json_t *apps = json_array();
    if (!apps) return NULL;
    if (app_type && !json_is_null(app_type)) {
        if (!json_is_array(app_type)) {
            json_decref(apps);
            return NULL;
        }
        size_t i;
        const json_t *v;
        json_array_foreach(app_type, i, v) {
            if (!nonempty_string(v)) continue;
            char buf[64];
            const char *s = json_string_value(v);
            size_t n = 0;
            for (; n < sizeof buf - 1 && s[n]; n++) buf[n] = (char)tolower((unsigned char)s[n]);
            buf[n] = '\0';
            json_array_append_new(apps, json_string(buf));
        }
    }
    if (json_array_size(apps) == 0) json_array_append_new(apps, json_string("generic"));
    return apps;
}

/* Adds a gauge entry for (qkey, rkey) of balance if either is present.
 * 1 added, 0 absent, -1 malformed. *remaining gets remaining (0 if absent). */
static int gauge_entry(json_t *gauge, const json_t *balance, const char *unit, const char *qkey,
                       const char *rkey, int64_t *remaining, const char **why) {
    const json_t *q = json_object_get(balance, qkey);
    const json_t *r = json_object_get(balance, rkey);
    *remaining = 0;
    if ((!q || json_is_null(q)) && (!r || json_is_null(r))) return 0;
    json_t *e = json_pack("{s:s}", "unit", unit);
    if (!e) {
        *why = "out of memory";
        return -1;
    }
    int64_t v;
    if (q && !json_is_null(q)) {
        if (json_int64(q, &v) != 0 || v < 0) {
            *why = qkey;
            json_decref(e);
            return -1;
        }
        json_object_set_new(e, "quota", json_integer(v));
    }
    if (r && !json_is_null(r)) {
        if (json_int64(r, &v) != 0 || v < 0) {
            *why = rkey;
            json_decref(e);
            return -1;
        }
        json_object_set_new(e, "remaining", json_integer(v));
        *remaining = v;
    }
    json_array_append_new(gauge, e);
    return 1;
}

/* One subscribedPlan -> ActivePlan. NULL with why when malformed.
 * *bytes_plan / *bytes_remaining describe its byte balance. */
static json_t *active_plan(const mapping_ctx *m, const json_t *plan, bool *bytes_plan,
                           int64_t *bytes_remaining, const char **why) {
    *bytes_plan = false;
    *bytes_remaining = 0;
    if (!json_is_object(plan)) {
        *why = "not an object";
        return NULL;
    }
    const json_t *id = json_object_get(plan, "planId");
    const json_t *name = json_object_get(plan, "planName");
    if (!nonempty_string(id)) {
        *why = "planId missing or not a string";
        return NULL;
    }
    if (!nonempty_string(name)) {
        *why = "planName missing or not a string";
        return NULL;
    }
    const char *lang = language_of(m);
    json_t *out = json_object();
    json_object_set_new(out, "planId", json_string(json_string_value(id)));
    json_object_set_new(out, "planName", multilingual(lang, json_string_value(name)));
    const json_t *desc = json_object_get(plan, "planDescription");
    if (!nonempty_string(desc)) desc = json_object_get(plan, "description");
    if (nonempty_string(desc))
        json_object_set_new(out, "planDescription", multilingual(lang, json_string_value(desc)));

    const json_t *exp = json_object_get(plan, "expirationTime");
    char buf[64];
    if (json_is_string(exp) && normalize_datetime(json_string_value(exp), buf, sizeof buf) == 0)
        json_object_set_new(out, "expiry", json_string(buf));

    const json_t *balance = json_object_get(plan, "balance");
    if (balance && !json_is_null(balance)) {
        if (!json_is_object(balance)) {
            *why = "balance is not an object";
            json_decref(out);
            return NULL;
        }
        json_t *gauge = json_array();
        int64_t rem_min;
        int b = gauge_entry(gauge, balance, "bytes", "quotaBytes", "remainingBytes",
                            bytes_remaining, why);
        int t = b < 0 ? -1
                      : gauge_entry(gauge, balance, "data-minutes", "quotaMinutes",
                                    "remainingMinutes", &rem_min, why);
        if (b < 0 || t < 0) {
            json_decref(gauge);
            json_decref(out);
            return NULL;
        }
        *bytes_plan = b > 0;
        if (json_array_size(gauge) > 0)
            json_object_set_new(out, "gauge", gauge);
        else
            json_decref(gauge);
    }

    json_t *apps = applications(json_object_get(plan, "appType"));
    if (!apps) {
        *why = "appType is not an array";
        json_decref(out);
        return NULL;
    }
    json_object_set_new(out, "applications", apps);
    return out;
}

json_t *map_balance(const mapping_ctx *m, const json_t *body, char *err, size_t errlen) {
    if (!ctx_ok(m, body, err, errlen)) return NULL;
    const char *acct, *currency;
    int64_t main_minor;
    if (account_basics(m, body, &acct, &main_minor, &currency, err, errlen) != 0) return NULL;
    const json_t *price_plan = json_object_get(body, "pricePlan");
    if (price_plan && !json_is_null(price_plan) && !json_is_string(price_plan)) {
        text_printf(err, errlen, "pricePlan: not a string");
        return NULL;
    }
    const json_t *plans = json_object_get(body, "subscribedPlans");
    if (plans && !json_is_null(plans) && !json_is_array(plans)) {
        text_printf(err, errlen, "subscribedPlans: not an array");
        return NULL;
    }

    json_t *out = json_object();
    json_t *active = json_array();
    if (!out || !active) {
        json_decref(out);
        json_decref(active);
        text_printf(err, errlen, "out of memory mapping balance");
        return NULL;
    }
    drops d = {0};
    bool any_bytes = false;
    int64_t bytes_total = 0;
    size_t i;
    const json_t *plan;
    json_array_foreach(plans, i, plan) {
        bool bytes_plan;
        int64_t rem;
        const char *why = "malformed";
        json_t *ap = active_plan(m, plan, &bytes_plan, &rem, &why);
        if (!ap) {
            drop(&d, "subscribedPlans[%zu]: %s", i, why);
            continue;
        }
        json_array_append_new(active, ap);
        if (bytes_plan) {
            any_bytes = true;
            bytes_total = add_saturating(bytes_total, rem);
        }
    }

    json_object_set_new(out, "activePlans", active);
    json_object_set_new(out, "validUntil", rfc3339_json(m->valid_until_ms));
    if (m->op->id) json_object_set_new(out, "operator", json_string(m->op->id));
    if (acct) json_object_set_new(out, "accountType", json_string(acct));
    json_object_set_new(out, "accountStatus", json_string("ACTIVE"));
    if (nonempty_string(price_plan))
        json_object_set_new(out, "ratePlanId", json_string(json_string_value(price_plan)));
    json_object_set_new(out, "monetaryBalance",
                        json_pack("{s:o}", "balance", money_string(main_minor, scale_of(m))));
    if (any_bytes) {
        char buf[24];
        snprintf(buf, sizeof buf, "%" PRId64, bytes_total);
        json_object_set_new(out, "dataBalance", json_pack("{s:s}", "balance", buf));
    }
    report_drops(&d, "plan", err, errlen);
    return out;
}

/* ------------------------------------------------------------ upsellOffer */

static const char *const SUBSCRIBER_STATES[] = {"GOOD_TO_GO", "NEED_OFFERS", "NEED_LOANS",
                                                "NEED_TOPUP", NULL};

/* 0 principal, 1 supplementary, -1 malformed appType. */
static int offer_kind(const json_t *app_type) {
    if (!app_type || json_is_null(app_type)) return 0;
    if (!json_is_array(app_type)) return -1;
    size_t i;
    const json_t *v;
    json_array_foreach(app_type, i, v) {
        if (!json_is_string(v)) return -1;
        if (strcasecmp(json_string_value(v), "GENERIC") != 0) return 1;
    }
    return 0;
}

/* One offerInfo -> Offer. NULL with why when the offer is malformed;
 * *skip set when it is filtered out by planType or maxPrice. Its
 * offerContext's claims (all but the expiry, set when it is signed) go to
 * *ctx, and the mapped offer's "offerContext" is "": signed by the caller
 * (upsell_template_render). */
static json_t *offer(const mapping_ctx *m, const json_t *o, int want_kind, offer_context *ctx,
                     bool *skip, const char **why) {
    *skip = false;
    if (!json_is_object(o)) {
        *why = "not an object";
        return NULL;
    }
    const json_t *id = json_object_get(o, "id");
    const json_t *name = json_object_get(o, "name");
    if (!nonempty_string(id) || json_string_length(id) >= sizeof(((offer_context *)0)->plan_id)) {
        *why = "id missing, not a string or too long";
        return NULL;
    }
    if (!nonempty_string(name)) {
        *why = "name missing or not a string";
        return NULL;
    }
    int kind = offer_kind(json_object_get(o, "appType"));
    if (kind < 0) {
        *why = "appType is not an array of strings";
        return NULL;
    }

    int scale = scale_of(m);
    int64_t price;
    const char *cur = NULL, *mwhy = NULL;
    const json_t *cost = json_object_get(o, "cost");
    if (!cost) {
        *why = "cost missing";
        return NULL;
    }
    if (money_object(cost, scale, &price, &cur, &mwhy) != 0) {
        *why = mwhy;
        return NULL;
    }
    if (price < 0) {
        *why = "cost is negative";
        return NULL;
    }
    if (!cur) cur = m->op->currency;
    if (!cur || strlen(cur) >= sizeof(((offer_context *)0)->currency)) {
        *why = "cost currency missing or too long";
        return NULL;
    }

    /* quota: {quotaBytes} / {quotaMinutes} object, or a bare integer (bytes). */
    const json_t *quota = json_object_get(o, "quota");
    json_t *quotas = json_array();
    const char *type = NULL;
    int64_t v;
    if (json_is_integer(quota) || json_is_real(quota)) {
        if (json_int64(quota, &v) != 0 || v < 0) {
            json_decref(quotas);
            *why = "quota is not a non-negative integer";
            return NULL;
        }
        json_array_append_new(quotas,
                              json_pack("{s:s, s:I}", "unit", "bytes", "quota", (json_int_t)v));
        type = "Data";
    } else if (json_is_object(quota)) {
        static const struct {
            const char *key, *unit, *type;
        } Q[] = {{"quotaBytes", "bytes", "Data"}, {"quotaMinutes", "data-minutes", "Minutes"}};
        for (size_t k = 0; k < sizeof Q / sizeof Q[0]; k++) {
            const json_t *q = json_object_get(quota, Q[k].key);
            if (!q || json_is_null(q)) continue;
            if (json_int64(q, &v) != 0 || v < 0) {
                json_decref(quotas);
                *why = "quota value is not a non-negative integer";
                return NULL;
            }
            json_array_append_new(
                quotas, json_pack("{s:s, s:I}", "unit", Q[k].unit, "quota", (json_int_t)v));
            if (!type) type = Q[k].type;
        }
    }
    if (!type) {
        json_decref(quotas);
        *why = "quota missing or without quotaBytes/quotaMinutes";
        return NULL;
    }

    /* fundSource: one of the four, passed on; any other value (the
     * backend spec's own example sends "PURCHASE") is left out. */
    const char *fund = json_string_value(json_object_get(o, "fundSource"));
    Millom__V1__FundSource fund_value;
    if (fund && fund_source_parse(fund, &fund_value) != 0) fund = NULL;
    if (fund && fund_value == MILLOM__V1__FUND_SOURCE__FUND_SOURCE_FREE && price != 0) {
        json_decref(quotas);
        *why = "fundSource FREE with a cost other than 0";
        return NULL;
    }

    if ((want_kind >= 0 && kind != want_kind) || (m->has_max_price && price > m->max_price_minor)) {
        json_decref(quotas);
        *skip = true;
        return NULL;
    }

    memset(ctx, 0, sizeof *ctx);
    snprintf(ctx->plan_id, sizeof ctx->plan_id, "%s", json_string_value(id));
    snprintf(ctx->subscriber, sizeof ctx->subscriber, "%s", m->subscriber);
    snprintf(ctx->provider, sizeof ctx->provider, "%s", m->service_provider);
    snprintf(ctx->op, sizeof ctx->op, "%s", m->op->id);
    ctx->price_minor = price;
    snprintf(ctx->currency, sizeof ctx->currency, "%s", cur);

    const char *lang = language_of(m);
    json_t *out = json_object();
    json_object_set_new(out, "planId", json_string(json_string_value(id)));
    json_object_set_new(out, "cost", money_string(price, scale));
    json_object_set_new(out, "costCurrency", json_string(cur));
    json_object_set_new(out, "type", json_string(type));
    json_object_set_new(out, "planName", multilingual(lang, json_string_value(name)));
    const json_t *desc = json_object_get(o, "description");
    if (!nonempty_string(desc)) desc = json_object_get(o, "shortDescription");
    if (nonempty_string(desc))
        json_object_set_new(out, "planDescription", multilingual(lang, json_string_value(desc)));
    json_object_set_new(out, "quota", quotas);
    if (fund) json_object_set_new(out, "fundSource", json_string(fund));
    json_object_set_new(out, "offerContext", json_string(""));
    return out;
}

const char *map_offer_type(const char *plan_type) {
    return plan_type && strcmp(plan_type, "principal") == 0 ? "Data" : NULL;
}

json_t *map_upsell_offer_unsigned(const mapping_ctx *m, const json_t *body,
                                  offer_context **contexts, size_t *n_contexts, char *err,
                                  size_t errlen) {
    *contexts = NULL;
    *n_contexts = 0;
    if (!ctx_ok(m, body, err, errlen)) return NULL;
    int want_kind = -1;
    if (m->plan_type && m->plan_type[0]) {
        if (strcmp(m->plan_type, "principal") == 0)
            want_kind = 0;
        else if (strcmp(m->plan_type, "supplementary") == 0)
            want_kind = 1;
        else {
            text_printf(err, errlen, "planType: unknown value");
            return NULL;
        }
    }
    if (!m->subscriber || strlen(m->subscriber) >= sizeof(((offer_context *)0)->subscriber) ||
        !m->service_provider ||
        strlen(m->service_provider) >= sizeof(((offer_context *)0)->provider) || !m->op->id ||
        strlen(m->op->id) >= sizeof(((offer_context *)0)->op)) {
        text_printf(err, errlen,
                    "mapping context: subscriber, provider or operator missing or too long");
        return NULL;
    }

    const json_t *state = json_object_get(body, "subscriberState");
    const char *st = json_is_string(state) ? json_string_value(state) : NULL;
    bool known = false;
    for (size_t i = 0; st && SUBSCRIBER_STATES[i]; i++)
        known = known || strcmp(st, SUBSCRIBER_STATES[i]) == 0;
    if (!known) {
        text_printf(err, errlen, "subscriberState: %s", st ? "unknown value" : "missing");
        return NULL;
    }
    const json_t *offers = json_object_get(body, "offers");
    if (!json_is_array(offers)) {
        text_printf(err, errlen, "offers: %s", offers ? "not an array" : "missing");
        return NULL;
    }

    /* One context per backend offer at most. */
    offer_context *ctxs =
        malloc((json_array_size(offers) ? json_array_size(offers) : 1) * sizeof *ctxs);
    json_t *out_offers = json_array();
    if (!ctxs || !out_offers) {
        free(ctxs);
        json_decref(out_offers);
        text_printf(err, errlen, "out of memory mapping upsellOffer");
        return NULL;
    }
    drops d = {0};
    size_t i, n = 0;
    const json_t *o;
    json_array_foreach(offers, i, o) {
        if (m->limit > 0 && n >= (size_t)m->limit) break;
        bool skip;
        const char *why = "malformed";
        json_t *mapped = offer(m, o, want_kind, &ctxs[n], &skip, &why);
        if (mapped && json_array_append_new(out_offers, mapped) == 0)
            n++;
        else if (!mapped && !skip)
            drop(&d, "offers[%zu]: %s", i, why);
    }
    json_t *out = json_pack("{s:s, s:o}", "subscriberState", st, "offers", out_offers);
    if (!out) {
        free(ctxs);
        text_printf(err, errlen, "out of memory mapping upsellOffer");
        return NULL;
    }
    report_drops(&d, "offer", err, errlen);
    *contexts = ctxs;
    *n_contexts = n;
    return out;
}

/* ----------------------------------------------------------------- errors */

void mapping_mask_digits(const char *text, char *out, size_t outlen) {
    backend_mask_digits(text, out, outlen);
}

const char *map_backend_error(long http_status, const json_t *body, char *msg, size_t msglen) {
    const char *error_type = NULL, *backend_msg = NULL;
    if (json_is_object(body)) {
        const json_t *et = json_object_get(body, "errorType");
        const json_t *mm = json_object_get(body, "message");
        if (nonempty_string(et)) error_type = json_string_value(et);
        if (nonempty_string(mm)) backend_msg = json_string_value(mm);
    }

    const char *fallback = NULL;
    const char *cause = backend_error_cause(error_type, http_status, &fallback);
    char with_status[128];
    if (!error_type && http_status != 0) {
        snprintf(with_status, sizeof with_status, "%s (HTTP %ld)", fallback, http_status);
        fallback = with_status;
    }
    /* The operator's own text is logged (digits masked), never passed on:
     * a provider gets Millom's fixed message for the cause. */
    if (backend_msg) {
        char masked[256];
        mapping_mask_digits(backend_msg, masked, sizeof masked);
        log_info("operator backend error %s (HTTP %ld): %s", error_type ? error_type : "-",
                 http_status, masked);
    }
    if (msg && msglen > 0) mapping_mask_digits(fallback, msg, msglen);
    return cause;
}
