/* See request_std.h. The order of checks decides which error a request
 * with several problems gets: provider, key type, operator, the provider's
 * right to use the operator, the subscriber id, then the optional inputs. */
#include "request_std.h"
#include "shared/plumbing/errors.h"
#include "shared/contracts/money.h"
#include "shared/contracts/msisdn.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    std_action action;
} actions[] = {
    {"accountInfo", STD_ACCOUNT_INFO}, {"balance", STD_BALANCE},
    {"upsellOffer", STD_UPSELL_OFFER}, {"purchasePlan", STD_PURCHASE_PLAN},
    {"register", STD_REGISTER},
};

const char *std_action_name(std_action a) {
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (actions[i].action == a) return actions[i].name;
    return "?";
}

void std_primary_language(const char *accept_language, char *out, size_t outlen) {
    out[0] = '\0';
    if (!accept_language || outlen < 2) return;
    const char *p = accept_language;
    while (*p == ' ') p++;
    size_t n = 0;
    while (isalpha((unsigned char)p[n]) && n < 8) n++;
    if (n < 2 || n > 3 || n >= outlen) return; /* ISO 639 codes are 2-3 letters */
    if (p[n] && p[n] != '-' && p[n] != '_' && p[n] != ',' && p[n] != ';' && p[n] != ' ') return;
    for (size_t i = 0; i < n; i++) out[i] = (char)tolower((unsigned char)p[i]);
    out[n] = '\0';
}

static int printable_token(const char *s, size_t max) {
    size_t n = strlen(s);
    if (n == 0 || n > max) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) return 0;
    return 1;
}

#define FAIL(cause, ...)                    \
    do {                                    \
        snprintf(msg, msglen, __VA_ARGS__); \
        return cause;                       \
    } while (0)

const char *std_validate(const tenants *t, const cpid_config *cpid, int64_t now_ms,
                         const std_path *path, const std_inputs *in, std_request *out, char *msg,
                         size_t msglen) {
    memset(out, 0, sizeof *out);
    out->path = *path;

    out->provider = tenants_provider(t, path->provider);
    if (!out->provider)
        FAIL(CAUSE_NOT_ALLOWED, "serviceProvider '%.64s' is not provisioned", path->provider);

    const char *kt = in->key_type && *in->key_type ? in->key_type : "MSISDN";
    if (strcmp(kt, "MSISDN") == 0)
        out->key_type = MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN;
    else if (strcmp(kt, "CPID") == 0)
        out->key_type = MILLOM__V1__KEY_TYPE__KEY_TYPE_CPID;
    else if (strcmp(kt, "OPET") == 0)
        out->key_type = MILLOM__V1__KEY_TYPE__KEY_TYPE_OPET;
    else
        FAIL(CAUSE_BAD_REQUEST, "key_type must be one of MSISDN, CPID, OPET");

    /* The operator: from the path, or derived from the subscriber id. */
    char msisdn[16] = "";
    int msisdn_ok = out->key_type == MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN &&
                    msisdn_normalize(path->subscriber, msisdn, sizeof msisdn);
    if (path->op[0]) {
        out->op = tenants_operator(t, path->op);
        if (!out->op) FAIL(CAUSE_BAD_REQUEST, "unknown operator '%.32s'", path->op);
    } else if (out->key_type == MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN) {
        if (!msisdn_ok) FAIL(CAUSE_INVALID_NUMBER, "subscriberId is not an E.164 MSISDN");
        out->op = tenants_operator_for_msisdn(t, msisdn);
        if (!out->op)
            FAIL(CAUSE_INVALID_NUMBER, "no operator serves the country code of subscriberId");
    } else if (out->key_type == MILLOM__V1__KEY_TYPE__KEY_TYPE_CPID) {
        const char *comma = strrchr(path->subscriber, ',');
        out->op = comma ? tenants_operator_by_mccmnc(t, comma + 1) : NULL;
        if (!out->op) FAIL(CAUSE_BAD_CPID, "CPID does not end with a known operator MCCMNC");
    } else {
        FAIL(CAUSE_BAD_REQUEST, "key_type OPET needs the operator in the path");
    }
    if (!tenants_provider_uses(out->provider, out->op->id))
        FAIL(CAUSE_NOT_ALLOWED, "serviceProvider '%s' has no agreement with operator '%s'",
             out->provider->id, out->op->id);

    switch (out->key_type) {
    case MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN:
        if (!msisdn_ok) FAIL(CAUSE_INVALID_NUMBER, "subscriberId is not an E.164 MSISDN");
        if (strncmp(msisdn, out->op->country_code, strlen(out->op->country_code)) != 0)
            FAIL(CAUSE_INVALID_NUMBER, "subscriberId is not a number of operator '%s'",
                 out->op->id);
        strcpy(out->subscriber, msisdn);
        break;
    case MILLOM__V1__KEY_TYPE__KEY_TYPE_OPET:
        if (!printable_token(path->subscriber, 256))
            FAIL(CAUSE_BAD_REQUEST, "subscriberId is not a valid OPET token");
        strcpy(out->subscriber, path->subscriber);
        break;
    default: {
        cpid_info info;
        cpid_status st = cpid_decode(cpid, path->subscriber, now_ms, &info);
        if (st != CPID_OK && st != CPID_EXPIRED)
            FAIL(CAUSE_BAD_CPID, "subscriberId: %s", cpid_status_text(st));
        /* Another provider's CPID is refused before anything else is said
         * about it, expired or not. */
        if (strcmp(info.provider, out->provider->id) != 0)
            FAIL(CAUSE_NOT_ALLOWED,
                 "subscriberId: this CPID was not issued to serviceProvider '%s'",
                 out->provider->id);
        if (st == CPID_EXPIRED) FAIL(CAUSE_BAD_CPID, "subscriberId: %s", cpid_status_text(st));
        if (strcmp(info.mccmnc, out->op->mccmnc) != 0 ||
            strncmp(info.msisdn, out->op->country_code, strlen(out->op->country_code)) != 0)
            FAIL(CAUSE_BAD_CPID, "subscriberId: the CPID is not one of operator '%s'", out->op->id);
        strcpy(out->subscriber, info.msisdn);
        out->key_type = MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN;
        out->from_cpid = true;
        break;
    }
    }

    if (in->plan_type && *in->plan_type) {
        if (strcmp(in->plan_type, "principal") != 0 && strcmp(in->plan_type, "supplementary") != 0)
            FAIL(CAUSE_BAD_REQUEST, "planType must be one of principal, supplementary");
        strcpy(out->plan_type, in->plan_type);
    }
    if (in->dealer_code) {
        if (!printable_token(in->dealer_code, 64))
            FAIL(CAUSE_BAD_REQUEST, "dealerCode must be 1 to 64 printable characters");
        strcpy(out->dealer_code, in->dealer_code);
    }
    if (in->client_name) {
        if (!printable_token(in->client_name, 64))
            FAIL(CAUSE_BAD_REQUEST, "clientName must be 1 to 64 printable characters");
        strcpy(out->client_name, in->client_name);
    }
    if (in->max_price) {
        int64_t minor;
        int scale = out->op->currency_scale < 0 ? 0 : out->op->currency_scale;
        if (money_parse(in->max_price, scale, &minor) != 0 || minor < 0 ||
            money_format(minor, scale, out->max_price, sizeof out->max_price) < 0)
            FAIL(CAUSE_BAD_REQUEST,
                 "maxPrice must be a non-negative amount with at most %d decimals, e.g. 60.00",
                 scale);
    }
    if (in->limit) {
        size_t n = strlen(in->limit);
        int ok = n >= 1 && n <= 3 && in->limit[0] != '0';
        for (size_t i = 0; ok && i < n; i++) ok = isdigit((unsigned char)in->limit[i]);
        if (!ok || atoi(in->limit) > STD_OFFER_LIMIT_MAX)
            FAIL(CAUSE_BAD_REQUEST, "limit must be an integer from 1 to %d", STD_OFFER_LIMIT_MAX);
        out->limit = atoi(in->limit);
    }
    char wanted[16];
    std_primary_language(in->accept_language, wanted, sizeof wanted);
    snprintf(out->language, sizeof out->language, "%s", tenant_operator_language(out->op, wanted));
    out->no_cache = in->cache_control && strcasestr(in->cache_control, "no-cache") != NULL;
    return NULL;
}
