/* Parsing and validation of the standard API's requests
 * (/std/{serviceProvider}[/{operator}]/{subscriberId}/{action}).
 * Pure functions: no I/O, so every rule is unit-tested directly. */
#ifndef API_EDGE_REQUEST_STD_H
#define API_EDGE_REQUEST_STD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "shared/contracts/config.h"
#include "shared/contracts/cpid.h"
#include "millom/v1/common.pb-c.h"

typedef enum {
    STD_ACCOUNT_INFO,
    STD_BALANCE,
    STD_UPSELL_OFFER,
    STD_PURCHASE_PLAN,
    STD_REGISTER,
} std_action;

typedef struct {
    char provider[65];
    char op[33];          /* empty when the path has no operator segment */
    char subscriber[257]; /* as in the path (percent-decoded by the server) */
    std_action action;
} std_path;

const char *std_action_name(std_action a);

/* What the request said besides its path. Any field may be NULL. */
typedef struct {
    const char *key_type;
    const char *plan_type;
    const char *dealer_code;
    const char *client_name;
    const char *accept_language;
    const char *cache_control;
    const char *max_price; /* upsellOffer maxPrice: a decimal in the operator's currency */
    const char *limit;     /* upsellOffer limit: 1 to STD_OFFER_LIMIT_MAX offers */
} std_inputs;

#define STD_OFFER_LIMIT_MAX 100

typedef struct {
    std_path path;
    const tenant_operator *op;
    const tenant_provider *provider;
    /* MSISDN or OPET. A valid CPID is decoded here: key_type becomes
     * MSISDN and subscriber the MSISDN, so everything downstream works on
     * the MSISDN; from_cpid remembers how the SP named the subscriber. */
    Millom__V1__KeyType key_type;
    char subscriber[257]; /* normalized MSISDN, or the OPET token as given */
    bool from_cpid;
    char language[16]; /* resolved against the operator's languages */
    char plan_type[16];
    char dealer_code[65];
    char client_name[65];
    bool no_cache;
    char max_price[32]; /* normalized at the operator's currency scale ("60.00"), "" none */
    int limit;          /* 0: none */
} std_request;

/* Validates a parsed path and its inputs against the tenants. Returns NULL
 * when valid (out is filled), else an ErrorDocument cause with a message
 * naming the offending field in msg. CPIDs (key_type=CPID) are decoded
 * with `cpid` at `now_ms` (epoch ms; injectable for tests): undecodable,
 * tampered, expired, or of another operator -> BAD_CPID (410); issued to
 * another service provider -> NOT_ALLOWED (403), saying nothing about
 * whose it is. */
const char *std_validate(const tenants *t, const cpid_config *cpid, int64_t now_ms,
                         const std_path *path, const std_inputs *in, std_request *out, char *msg,
                         size_t msglen);

/* The primary ISO-639-1 subtag of the first range of an Accept-Language
 * header, lowercased ("ur-PK,en;q=0.5" -> "ur"); "" if none usable. */
void std_primary_language(const char *accept_language, char *out, size_t outlen);

#endif
