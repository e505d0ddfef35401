/* Query parameters of GET /balance/{customerId} and GET /offers/{customerId}.
 *
 * Required by the spec: customerIdType, channelId, serviceProviderId. The
 * sandbox accepts customerIdType MSISDN and OPET (an operator token standing
 * for a subscriber); Email and ConnectID, which the spec also names, are
 * refused with 400 like any other value. Offers filters: offerType (matched
 * case-insensitively against the offer's type; "All" means none), maxPrice
 * (a decimal amount in PKR; offers costing at most that are returned,
 * compared in minor units) and numberofOffers (a positive integer). */
#include "mno_sandbox.h"

#include "shared/contracts/money.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *param(mno_param_fn get, void *ctx, const char *name) {
    const char *v = get(ctx, name);
    return v && *v ? v : NULL;
}

static void pick_language(const char *lang, char out[4]) {
    size_t n = 0;
    while (lang && n < 3 && isalpha((unsigned char)lang[n])) {
        out[n] = (char)tolower((unsigned char)lang[n]);
        n++;
    }
    /* "ur", "ur-PK", "ur_PK", "urd": a primary subtag of 2-3 letters. */
    if (n >= 2 && (lang[n] == '\0' || lang[n] == '-' || lang[n] == '_')) {
        out[n] = '\0';
        return;
    }
    strcpy(out, "en");
}

int mno_parse_id_type(const char *type, mno_id_type *out, char *msg, size_t msglen) {
    if (!type || !*type) {
        snprintf(msg, msglen, "missing query parameter customerIdType");
        return -1;
    }
    if (strcasecmp(type, "MSISDN") == 0) {
        *out = MNO_ID_MSISDN;
    } else if (strcasecmp(type, "OPET") == 0) {
        *out = MNO_ID_OPET;
    } else {
        snprintf(msg, msglen, "customerIdType must be MSISDN or OPET");
        return -1;
    }
    return 0;
}

int mno_parse_request(mno_call call, const char *customer_id, mno_param_fn get, void *ctx,
                      mno_request *rq, char *msg, size_t msglen) {
    memset(rq, 0, sizeof *rq);
    rq->max_price_minor = -1;
    rq->max_offers = -1;

    if (!customer_id || !*customer_id || strlen(customer_id) > 64) {
        snprintf(msg, msglen, "customerId must be 1 to 64 characters");
        return -1;
    }
    rq->customer_id = customer_id;

    if (mno_parse_id_type(param(get, ctx, "customerIdType"), &rq->id_type, msg, msglen) != 0)
        return -1;
    if (!param(get, ctx, "channelId")) {
        snprintf(msg, msglen, "missing query parameter channelId");
        return -1;
    }
    if (!param(get, ctx, "serviceProviderId")) {
        snprintf(msg, msglen, "missing query parameter serviceProviderId");
        return -1;
    }
    rq->trans_id = param(get, ctx, "transId");
    pick_language(param(get, ctx, "lang"), rq->lang);
    if (call != MNO_CALL_OFFERS) return 0;

    const char *offer_type = param(get, ctx, "offerType");
    if (offer_type && strcasecmp(offer_type, "All") != 0) rq->offer_type = offer_type;

    const char *max_price = param(get, ctx, "maxPrice");
    if (max_price) {
        int64_t minor;
        if (money_parse(max_price, MNO_CURRENCY_SCALE, &minor) != 0 || minor < 0) {
            snprintf(msg, msglen,
                     "maxPrice must be a non-negative amount with at most %d decimals, e.g. 60.00",
                     MNO_CURRENCY_SCALE);
            return -1;
        }
        rq->max_price_minor = minor;
    }

    const char *count = param(get, ctx, "numberofOffers");
    if (count) {
        char *end;
        errno = 0;
        long n = strtol(count, &end, 10);
        if (!isdigit((unsigned char)count[0]) || *end || errno || n <= 0) {
            snprintf(msg, msglen, "numberofOffers must be a positive integer");
            return -1;
        }
        rq->max_offers = n;
    }
    return 0;
}
