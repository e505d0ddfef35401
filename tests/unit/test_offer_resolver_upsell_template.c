/* Unit tests for services/offer-resolver/upsell_template.c: an upsellOffer
 * answer written out once, its offerContexts signed into it per request.
 * The rendered answer must be the unsigned mapped answer as jansson writes
 * it out (the same members in the same order), with offerContexts that
 * verify, are fresh per render and expire after the render's time. */
#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/offer-resolver/upsell_template.h"
#include "shared/contracts/offer_context.h"

#define NOW_MS INT64_C(1795880000000)
#define TTL_MS INT64_C(900000)
#define MSISDN "924542610003"

static const char *const LANGS[] = {"en", "ur", NULL};

static const tenant_operator OP = {
    .id = "tp",
    .name = "Telenor Pakistan",
    .currency = "PKR",
    .currency_scale = 2,
    .default_language = "en",
    .languages = LANGS,
};

/* Offers whose text holds what a naive template would take for a hole
 * (the member itself, quotes and all), escapes and non-ASCII, an offer
 * dropped as malformed and one of another kind. */
static const char BODY[] =
    "{\"subscriberState\":\"NEED_OFFERS\",\"offers\":["
    "{\"id\":\"p1\",\"name\":\"Day \\\"offerContext\\\":\\\"\\\" pack\",\"appType\":[\"GENERIC\"],"
    "\"quota\":{\"quotaBytes\":1024},\"cost\":{\"currency\":\"PKR\",\"value\":10.5},"
    "\"fundSource\":\"WALLET\",\"description\":\"\\\"offerContext\\\":\\\"\\\"\"},"
    "{\"id\":\"p2\",\"name\":\"\\u0645\\u06c1\\u06cc\\u0646\\u06c1 \\t "
    "tab\",\"appType\":[\"VOICE\"],"
    "\"quota\":{\"quotaMinutes\":60},\"cost\":{\"value\":\"99\"}},"
    "{\"id\":\"bad\",\"name\":\"no cost\",\"quota\":1},"
    "{\"id\":\"p3\",\"name\":\"Week\",\"quota\":5000,\"cost\":{\"value\":0},"
    "\"fundSource\":\"FREE\"}]}";

/* "k1:..." then the default key: tokens carry the key id "k1." */
static const keys_set *keys(void) {
    static keys_set set;
    if (set.n == 0) {
        int at;
        char err[256];
        ck_assert_msg(keys_parse_list("MILLOM_OFFER_CONTEXT_KEYS", "k1:unit-test-upsell-template",
                                      &set, &at, err, sizeof err) == 0,
                      "%s", err);
    }
    return &set;
}

static mapping_ctx ctx(void) {
    return (mapping_ctx){
        .op = &OP,
        .service_provider = "testserviceprovider",
        .subscriber = MSISDN,
        .language = "ur",
        .now_ms = NOW_MS,
        .offer_context_keys = keys(),
        .offer_ttl_ms = TTL_MS,
    };
}

/* answer without each offer's offerContext, written out compact; copies
 * of the removed tokens into tokens (at most max; the caller frees them). */
static char *without_contexts(json_t *answer, char **tokens, size_t max, size_t *n) {
    size_t i;
    json_t *o;
    *n = 0;
    json_array_foreach(json_object_get(answer, "offers"), i, o) {
        const char *token = json_string_value(json_object_get(o, "offerContext"));
        if (*n < max) tokens[(*n)++] = token ? strdup(token) : NULL;
        json_object_del(o, "offerContext");
    }
    return json_dumps(answer, JSON_COMPACT | JSON_PRESERVE_ORDER);
}

START_TEST(render_is_the_mapped_answer_with_fresh_contexts) {
    json_t *body = json_loads(BODY, 0, NULL);
    ck_assert_ptr_nonnull(body);
    mapping_ctx m = ctx();
    char err[256] = "", map_err[256] = "";
    upsell_template *t = upsell_template_new(&m, body, err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    ck_assert_msg(strstr(err, "dropped 1") != NULL, "the malformed offer is reported: %s", err);
    ck_assert_uint_eq(upsell_template_offers(t), 3);
    ck_assert_str_eq(upsell_template_plan_id(t, 0), "p1");
    ck_assert_str_eq(upsell_template_plan_id(t, 1), "p2");
    ck_assert_str_eq(upsell_template_plan_id(t, 2), "p3");
    ck_assert_ptr_null(upsell_template_plan_id(t, 3));

    /* What the text must be around the holes: the unsigned tree, written
     * out by jansson, not through the template. */
    offer_context *contexts;
    size_t n_contexts;
    json_t *mapped =
        map_upsell_offer_unsigned(&m, body, &contexts, &n_contexts, map_err, sizeof map_err);
    ck_assert_ptr_nonnull(mapped);
    ck_assert_uint_eq(n_contexts, 3);
    free(contexts);
    ck_assert_str_eq(err, map_err);
    char *mapped_tokens[8];
    size_t n_mapped;
    char *want = without_contexts(mapped, mapped_tokens, 8, &n_mapped);
    ck_assert_uint_eq(n_mapped, 3);
    for (size_t i = 0; i < n_mapped; i++) {
        ck_assert_str_eq(mapped_tokens[i], "");
        free(mapped_tokens[i]);
    }

    char *first_tokens[3] = {0};
    for (int round = 0; round < 2; round++) {
        /* Rendered later than it was made: the expiry follows the render. */
        m.now_ms = NOW_MS + round * 60000;
        size_t len = 0;
        char *text = upsell_template_render(t, &m, &len);
        ck_assert_ptr_nonnull(text);
        ck_assert_uint_eq(len, strlen(text));
        json_t *got = json_loads(text, 0, NULL);
        ck_assert_msg(got != NULL, "not JSON: %s", text);
        char *tokens[8];
        size_t n;
        char *got_text = without_contexts(got, tokens, 8, &n);
        ck_assert_uint_eq(n, 3);
        ck_assert_str_eq(got_text, want);
        for (size_t i = 0; i < n; i++) {
            ck_assert_ptr_nonnull(tokens[i]);
            ck_assert_msg(strncmp(tokens[i], "k1.", 3) == 0, "token %s", tokens[i]);
            offer_context oc;
            ck_assert_int_eq(offer_context_verify(tokens[i], keys(), m.now_ms, &oc), 0);
            ck_assert_str_eq(oc.plan_id, upsell_template_plan_id(t, i));
            ck_assert_str_eq(oc.subscriber, MSISDN);
            ck_assert_str_eq(oc.provider, "testserviceprovider");
            ck_assert_str_eq(oc.op, "tp");
            ck_assert(oc.expires_at_ms == m.now_ms + TTL_MS);
            ck_assert_int_eq(offer_context_verify(tokens[i], keys(), m.now_ms + TTL_MS, NULL), -2);
            if (round == 0)
                first_tokens[i] = tokens[i];
            else {
                ck_assert_str_ne(tokens[i], first_tokens[i]);
                free(tokens[i]);
            }
        }
        free(got_text);
        json_decref(got);
        free(text);
    }
    /* The prices bound in the contexts are the offers' own. */
    offer_context oc;
    ck_assert_int_eq(offer_context_verify(first_tokens[0], keys(), NOW_MS, &oc), 0);
    ck_assert(oc.price_minor == 1050);
    ck_assert_int_eq(offer_context_verify(first_tokens[1], keys(), NOW_MS, &oc), 0);
    ck_assert(oc.price_minor == 9900);
    ck_assert_int_eq(offer_context_verify(first_tokens[2], keys(), NOW_MS, &oc), 0);
    ck_assert(oc.price_minor == 0);
    for (int i = 0; i < 3; i++) free(first_tokens[i]);
    free(want);
    json_decref(mapped);
    upsell_template_release(t);
    json_decref(body);
}
END_TEST

START_TEST(fits_only_the_same_mapping_inputs) {
    json_t *body = json_loads(BODY, 0, NULL);
    mapping_ctx m = ctx();
    char err[256];
    upsell_template *t = upsell_template_new(&m, body, err, sizeof err);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(upsell_template_fits(t, &m), 1);
    /* Time, keys and the contexts' lifetime only count when rendering. */
    mapping_ctx later = m;
    later.now_ms += 3600000;
    later.offer_ttl_ms = 1;
    later.offer_context_keys = NULL;
    ck_assert_int_eq(upsell_template_fits(t, &later), 1);

    mapping_ctx other[7];
    for (int i = 0; i < 7; i++) other[i] = m;
    other[0].plan_type = "supplementary";
    other[1].limit = 1;
    other[2].has_max_price = true;
    other[2].max_price_minor = 2000;
    other[3].language = "en";
    other[4].service_provider = "otherprovider";
    other[5].subscriber = "924542610004";
    tenant_operator op = OP;
    op.currency_scale = 3;
    other[6].op = &op;
    for (int i = 0; i < 7; i++) ck_assert_msg(!upsell_template_fits(t, &other[i]), "input %d", i);
    /* and those inputs do change the answer: two of them, checked */
    upsell_template *one = upsell_template_new(&other[1], body, err, sizeof err);
    ck_assert_uint_eq(upsell_template_offers(one), 1);
    upsell_template *sup = upsell_template_new(&other[0], body, err, sizeof err);
    ck_assert_uint_eq(upsell_template_offers(sup), 1);
    ck_assert_str_eq(upsell_template_plan_id(sup, 0), "p2");
    upsell_template_release(sup);
    upsell_template_release(one);

    /* A hold keeps it alive after the maker's release. */
    upsell_template_hold(t);
    upsell_template_release(t);
    ck_assert_int_eq(upsell_template_fits(t, &m), 1);
    upsell_template_release(t);
    json_decref(body);
}
END_TEST

START_TEST(no_offers_and_malformed_answers) {
    mapping_ctx m = ctx();
    char err[256];
    json_t *body = json_loads("{\"subscriberState\":\"NEED_TOPUP\",\"offers\":[]}", 0, NULL);
    upsell_template *t = upsell_template_new(&m, body, err, sizeof err);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(upsell_template_offers(t), 0);
    size_t len;
    char *text = upsell_template_render(t, &m, &len);
    ck_assert_str_eq(text, "{\"subscriberState\":\"NEED_TOPUP\",\"offers\":[]}");
    free(text);
    upsell_template_release(t);
    json_decref(body);

    body = json_loads("{\"subscriberState\":\"NEED_OFFERS\"}", 0, NULL);
    ck_assert_ptr_null(upsell_template_new(&m, body, err, sizeof err));
    ck_assert_str_eq(err, "offers: missing");
    json_decref(body);

    /* No key to sign with: no answer rather than one without contexts. */
    body = json_loads(BODY, 0, NULL);
    t = upsell_template_new(&m, body, err, sizeof err);
    keys_set none = {0};
    m.offer_context_keys = &none;
    ck_assert_ptr_null(upsell_template_render(t, &m, &len));
    upsell_template_release(t);
    upsell_template_release(NULL);
    json_decref(body);
}
END_TEST

int main(void) {
    Suite *s = suite_create("offer_resolver_upsell_template");
    TCase *tc = tcase_create("template");
    tcase_add_test(tc, render_is_the_mapped_answer_with_fresh_contexts);
    tcase_add_test(tc, fits_only_the_same_mapping_inputs);
    tcase_add_test(tc, no_offers_and_malformed_answers);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
