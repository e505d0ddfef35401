/* upsellOffer answers written out once per cached /offers answer; see
 * upsell_template.h.
 *
 * The holes: the unsigned answer (map_upsell_offer_unsigned) is written
 * out compact, and each "offerContext":"" in the text marks one offer's
 * hole, between the empty string's quotes. That sequence can only be an
 * offerContext member: inside a JSON string every quote is escaped, so a
 * backend's plan name or description cannot contain it, and the mapped
 * answer has no other member of that name. The count is checked against
 * the offers anyway. A token is base64url, with a key id ([A-Za-z0-9_-])
 * and a '.' in front: nothing in it needs escaping in a JSON string
 * (checked when rendering). */
#include "services/offer-resolver/upsell_template.h"
#include "shared/contracts/offer_context.h"
#include "shared/plumbing/text.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOLE "\"offerContext\":\""
#define FINGERPRINT_MAX 512

struct upsell_template {
    atomic_size_t holders;
    char *text; /* the answer with every offerContext "" */
    size_t text_len;
    size_t n;        /* offers, one hole each */
    size_t *hole_at; /* where hole i is in text: the offset of its closing quote */
    char **plan_ids; /* each offer's planId */
    char **claims;   /* each offer's offerContext claims but the expiry, to seal */
    char fingerprint[FINGERPRINT_MAX];
};

/* What of m, besides the cache entry's key, the text depends on; -1 when
 * it does not fit in out (such a template is never reused). */
static int fingerprint(const mapping_ctx *m, char out[FINGERPRINT_MAX]) {
    const tenant_operator *op = m->op;
    int n = snprintf(
        out, FINGERPRINT_MAX, "%s\n%s\n%d\n%s\n%s\n%s\n%s\n%s\n%d:%" PRId64 "\n%d",
        op && op->id ? op->id : "", op && op->currency ? op->currency : "",
        op ? op->currency_scale : 0, op && op->default_language ? op->default_language : "",
        m->service_provider ? m->service_provider : "", m->subscriber ? m->subscriber : "",
        m->language ? m->language : "", m->plan_type ? m->plan_type : "", m->has_max_price ? 1 : 0,
        m->has_max_price ? m->max_price_minor : 0, m->limit);
    return n > 0 && n < FINGERPRINT_MAX ? n : -1;
}

static void template_free(upsell_template *t) {
    for (size_t i = 0; i < t->n; i++) {
        if (t->plan_ids) free(t->plan_ids[i]);
        if (t->claims) free(t->claims[i]);
    }
    free(t->plan_ids);
    free(t->claims);
    free(t->text);
    free(t->hole_at);
    free(t);
}

upsell_template *upsell_template_new(const mapping_ctx *m, const json_t *backend_offers, char *err,
                                     size_t errlen) {
    offer_context *offers = NULL;
    size_t n = 0;
    json_t *tree = map_upsell_offer_unsigned(m, backend_offers, &offers, &n, err, errlen);
    if (!tree) return NULL;
    upsell_template *t = calloc(1, sizeof *t);
    char *text = json_dumps(tree, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(tree);
    if (!t || !text || !(t->hole_at = malloc((n ? n : 1) * sizeof *t->hole_at))) {
        free(text);
        free(offers);
        if (t) template_free(t);
        text_printf(err, errlen, "out of memory writing out upsellOffer");
        return NULL;
    }
    atomic_init(&t->holders, 1);
    t->text = text;
    t->text_len = strlen(text);
    t->n = n;
    if (fingerprint(m, t->fingerprint) < 0) t->fingerprint[0] = '\0';
    size_t found = 0;
    for (const char *at = text; (at = strstr(at, HOLE "\"")) != NULL; at += strlen(HOLE)) {
        if (found < n) t->hole_at[found] = (size_t)(at - text) + strlen(HOLE);
        found++;
    }
    if (found != n) {
        text_printf(err, errlen,
                    "upsellOffer written out with %zu offerContext(s) for %zu offer(s)", found, n);
        free(offers);
        template_free(t);
        return NULL;
    }
    t->plan_ids = calloc(n ? n : 1, sizeof *t->plan_ids);
    t->claims = calloc(n ? n : 1, sizeof *t->claims);
    size_t bad = t->plan_ids && t->claims ? n : 0; /* the first offer that failed */
    for (size_t i = 0; bad == n && i < n; i++) {
        t->plan_ids[i] = strdup(offers[i].plan_id);
        t->claims[i] = offer_context_claims(&offers[i]); /* NULL: out of memory, not UTF-8 */
        if (!t->plan_ids[i] || !t->claims[i]) bad = i;
    }
    free(offers);
    if (bad < n || !t->plan_ids || !t->claims) {
        text_printf(err, errlen, "offers[%zu]: its offerContext claims cannot be written", bad);
        template_free(t);
        return NULL;
    }
    return t;
}

void upsell_template_hold(upsell_template *t) { atomic_fetch_add(&t->holders, 1); }

void upsell_template_release(upsell_template *t) {
    if (t && atomic_fetch_sub(&t->holders, 1) == 1) template_free(t);
}

int upsell_template_fits(const upsell_template *t, const mapping_ctx *m) {
    char want[FINGERPRINT_MAX];
    return t->fingerprint[0] && fingerprint(m, want) >= 0 && strcmp(t->fingerprint, want) == 0;
}

/* base64url, key id characters and the key id's '.' */
static int token_is_plain(const char *s) {
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

char *upsell_template_render(const upsell_template *t, const mapping_ctx *m, size_t *len) {
    const keys_set *keys = m->offer_context_keys ? m->offer_context_keys : offer_context_keys();
    char **tokens = calloc(t->n ? t->n : 1, sizeof *tokens);
    size_t *token_len = calloc(t->n ? t->n : 1, sizeof *token_len);
    char *out = NULL;
    size_t total = t->text_len, i;
    if (!tokens || !token_len) goto done;
    for (i = 0; i < t->n; i++) {
        tokens[i] = offer_context_seal(t->claims[i], m->now_ms + m->offer_ttl_ms, keys);
        if (!tokens[i] || !token_is_plain(tokens[i])) goto done;
        token_len[i] = strlen(tokens[i]);
        total += token_len[i];
    }
    if (!(out = malloc(total + 1))) goto done;
    size_t from = 0, w = 0;
    for (i = 0; i < t->n; i++) {
        memcpy(out + w, t->text + from, t->hole_at[i] - from);
        w += t->hole_at[i] - from;
        from = t->hole_at[i];
        memcpy(out + w, tokens[i], token_len[i]);
        w += token_len[i];
    }
    memcpy(out + w, t->text + from, t->text_len - from);
    w += t->text_len - from;
    out[w] = '\0';
    *len = w;
done:
    for (i = 0; tokens && i < t->n; i++) free(tokens[i]);
    free(tokens);
    free(token_len);
    return out;
}

size_t upsell_template_offers(const upsell_template *t) { return t->n; }

const char *upsell_template_plan_id(const upsell_template *t, size_t i) {
    return i < t->n ? t->plan_ids[i] : NULL;
}

size_t upsell_template_bytes(const upsell_template *t) {
    size_t bytes = sizeof *t + t->text_len + 1 + t->n * sizeof *t->hole_at;
    for (size_t i = 0; i < t->n; i++)
        bytes += sizeof *t->plan_ids + strlen(t->plan_ids[i]) + 1 + sizeof *t->claims +
                 strlen(t->claims[i]) + 1;
    return bytes;
}

json_t *map_upsell_offer(const mapping_ctx *m, const json_t *backend_offers, char *err,
                         size_t errlen) {
    upsell_template *t = upsell_template_new(m, backend_offers, err, errlen);
    if (!t) return NULL;
    size_t len = 0;
    char *text = upsell_template_render(t, m, &len);
    upsell_template_release(t);
    json_t *answer = text ? json_loadb(text, len, 0, NULL) : NULL;
    free(text);
    if (!answer) text_printf(err, errlen, "offerContext signing failed or out of memory");
    return answer;
}
