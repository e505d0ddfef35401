/* Unit tests for services/offer-resolver/backend_cache.c, the in-memory
 * cache of the operator backend's /balance and /offers answers: expiry,
 * keys, a purchase's forget (and the answer fetched before it that comes
 * back after it), replacing, the byte budget, the parsed answers shared
 * with their readers, a text the same as the entry's taking the
 * entry's parsed answer, and the mapped answers and upsellOffer template
 * kept beside an answer. Runs with CK_FORK=no;
 * every cache is freed (the ASan build checks for leaks). */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/offer-resolver/resolver.h"

#define TTL_MS 30000
#define T0 INT64_C(1795880000000)

/* The backend's answer as its text: a 200's JSON. */
static backend_answer *put_text(backend_cache *c, backend_cache_kind kind, const char *op,
                                const char *sub, const char *key, const char *json,
                                int64_t fetched) {
    int not_json = -1;
    backend_answer *a =
        backend_cache_put(c, kind, op, sub, key, json, strlen(json), fetched, &not_json);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(not_json, 0);
    return a;
}

/* Caches {"t": text} for (kind, op, subscriber, key). */
static void put(backend_cache *c, backend_cache_kind kind, const char *op, const char *sub,
                const char *key, const char *text, int64_t fetched) {
    json_t *body = json_pack("{s:s}", "t", text);
    char *json = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    ck_assert_ptr_nonnull(json);
    backend_answer_release(
        put_text(c, kind, op, sub, key, json, fetched)); /* the cache keeps its own hold */
    free(json);
}

/* A copy of the text put for (kind, op, subscriber, key), cached at now,
 * or NULL. */
static char *get_op(backend_cache *c, backend_cache_kind kind, const char *op, const char *sub,
                    const char *key, int64_t now, int64_t *fetched) {
    int64_t f = -1;
    backend_answer *a = backend_cache_get(c, kind, op, sub, key, now, &f);
    if (fetched) *fetched = f;
    if (!a) return NULL;
    const json_t *body = json_object_get(backend_answer_json(a), "t");
    ck_assert(json_is_string(body));
    char *text = strdup(json_string_value(body));
    backend_answer_release(a);
    return text;
}

static char *get(backend_cache *c, backend_cache_kind kind, const char *sub, const char *key,
                 int64_t now, int64_t *fetched) {
    return get_op(c, kind, "tp", sub, key, now, fetched);
}

static void assert_body(char *body, const char *want) {
    ck_assert_ptr_nonnull(body);
    ck_assert_str_eq(body, want);
    free(body);
}

START_TEST(hit_until_expiry) {
    backend_cache *c = backend_cache_new(TTL_MS, 1 << 20);
    put(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", "{\"b\":1}", T0);
    int64_t fetched;
    assert_body(get(c, BACKEND_CACHE_BALANCE, "924542610003", "en", T0 + 1, &fetched), "{\"b\":1}");
    ck_assert_int_eq(fetched, T0);
    assert_body(get(c, BACKEND_CACHE_BALANCE, "924542610003", "en", T0 + TTL_MS - 1, NULL),
                "{\"b\":1}");
    ck_assert_ptr_null(get(c, BACKEND_CACHE_BALANCE, "924542610003", "en", T0 + TTL_MS, NULL));
    backend_cache_free(c);
}
END_TEST

START_TEST(kind_key_operator_and_subscriber_are_all_part_of_the_key) {
    backend_cache *c = backend_cache_new(TTL_MS, 1 << 20);
    put(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", "balance-en", T0);
    put(c, BACKEND_CACHE_OFFERS, "tp", "924542610003", "en", "offers-en", T0);
    put(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "ur", "balance-ur", T0);
    put(c, BACKEND_CACHE_BALANCE, "other", "924542610003", "en", "other-op", T0);
    assert_body(get(c, BACKEND_CACHE_BALANCE, "924542610003", "en", T0, NULL), "balance-en");
    assert_body(get(c, BACKEND_CACHE_OFFERS, "924542610003", "en", T0, NULL), "offers-en");
    assert_body(get(c, BACKEND_CACHE_BALANCE, "924542610003", "ur", T0, NULL), "balance-ur");
    ck_assert_ptr_null(get(c, BACKEND_CACHE_BALANCE, "924542610004", "en", T0, NULL));
    ck_assert_ptr_null(get(c, BACKEND_CACHE_OFFERS, "924542610003", "ur", T0, NULL));
    assert_body(get_op(c, BACKEND_CACHE_BALANCE, "other", "924542610003", "en", T0, NULL),
                "other-op");
    backend_cache_free(c);
}
END_TEST

START_TEST(forget_drops_entries_and_answers_fetched_before_it) {
    backend_cache *c = backend_cache_new(TTL_MS, 1 << 20);
    put(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", "before", T0);
    put(c, BACKEND_CACHE_OFFERS, "tp", "924542610003", "k", "offers", T0);
    put(c, BACKEND_CACHE_BALANCE, "tp", "924542610004", "en", "neighbour", T0);
    backend_cache_forget(c, "tp", "924542610003", T0 + 100);
    ck_assert_ptr_null(get(c, BACKEND_CACHE_BALANCE, "924542610003", "en", T0 + 101, NULL));
    ck_assert_ptr_null(get(c, BACKEND_CACHE_OFFERS, "924542610003", "k", T0 + 101, NULL));
    assert_body(get(c, BACKEND_CACHE_BALANCE, "924542610004", "en", T0 + 101, NULL), "neighbour");
    /* A backend call started before the purchase, answered after it. */
    put(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", "stale", T0 + 50);
    ck_assert_ptr_null(get(c, BACKEND_CACHE_BALANCE, "924542610003", "en", T0 + 200, NULL));
    /* One started after it is kept. */
    put(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", "fresh", T0 + 150);
    assert_body(get(c, BACKEND_CACHE_BALANCE, "924542610003", "en", T0 + 200, NULL), "fresh");
    backend_cache_free(c);
}
END_TEST

START_TEST(newer_answer_replaces_older_never_the_reverse) {
    backend_cache *c = backend_cache_new(TTL_MS, 1 << 20);
    put(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", "first", T0);
    size_t one = backend_cache_bytes(c);
    put(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", "second", T0 + 10);
    assert_body(get(c, BACKEND_CACHE_BALANCE, "924542610003", "en", T0 + 20, NULL), "second");
    put(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", "older", T0 + 5);
    assert_body(get(c, BACKEND_CACHE_BALANCE, "924542610003", "en", T0 + 20, NULL), "second");
    /* "second" is one byte longer: in the parsed answer, and in the text
     * and the two mapped answers counted beside it */
    ck_assert_uint_eq(backend_cache_bytes(c), one + 4);
    backend_cache_free(c);
}
END_TEST

START_TEST(budget_drops_the_subscriber_used_longest_ago) {
    char body[1000];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    const size_t budget = 64 * 1024;
    backend_cache *c = backend_cache_new(TTL_MS, budget);
    char sub[32];
    for (int i = 0; i < 200; i++) {
        snprintf(sub, sizeof sub, "92454261%04d", i);
        put(c, BACKEND_CACHE_BALANCE, "tp", sub, "en", body, T0);
        /* Subscriber 0 is read after every put: always the newest used. */
        char *kept = get(c, BACKEND_CACHE_BALANCE, "924542610000", "en", T0, NULL);
        ck_assert_ptr_nonnull(kept);
        free(kept);
        ck_assert_uint_le(backend_cache_bytes(c), budget);
    }
    ck_assert_ptr_null(get(c, BACKEND_CACHE_BALANCE, "924542610001", "en", T0, NULL));
    char *last = get(c, BACKEND_CACHE_BALANCE, "924542610199", "en", T0, NULL);
    ck_assert_ptr_nonnull(last);
    free(last);
    backend_cache_free(c);
}
END_TEST

START_TEST(ttl_zero_caches_nothing) {
    backend_cache *c = backend_cache_new(0, 1 << 20);
    put(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", "body", T0);
    ck_assert_ptr_null(get(c, BACKEND_CACHE_BALANCE, "924542610003", "en", T0, NULL));
    ck_assert_uint_eq(backend_cache_bytes(c), 0);
    backend_cache_free(c);
}
END_TEST

START_TEST(a_reader_keeps_its_answer_after_forget_and_replace) {
    backend_cache *c = backend_cache_new(TTL_MS, 1 << 20);
    backend_answer *mine =
        put_text(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", "{\"main\":\"100.00\"}", T0);
    int64_t f;
    backend_answer *a =
        backend_cache_get(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", T0, &f);
    backend_answer *b =
        backend_cache_get(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", T0, &f);
    /* Shared, not copied: a hit parses and copies nothing. */
    ck_assert_ptr_eq(a, mine);
    ck_assert_ptr_eq(b, mine);
    ck_assert_ptr_eq(backend_answer_json(a), backend_answer_json(mine));
    backend_answer_release(mine);
    /* A purchase forgets the entry and a newer answer replaces it while
     * two readers still map the old one: theirs stays whole (ASan). */
    backend_cache_forget(c, "tp", "924542610003", T0 + 1);
    put(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", "newer", T0 + 2);
    ck_assert_str_eq(json_string_value(json_object_get(backend_answer_json(a), "main")), "100.00");
    backend_answer_release(a);
    ck_assert_str_eq(json_string_value(json_object_get(backend_answer_json(b), "main")), "100.00");
    backend_answer_release(b);
    assert_body(get(c, BACKEND_CACHE_BALANCE, "924542610003", "en", T0 + 3, NULL), "newer");
    backend_cache_free(c);
}
END_TEST

/* The budget counts what a parsed answer keeps allocated, not its text:
 * an answer of many small values takes several times its text. */
START_TEST(the_budget_counts_parsed_answers) {
    const size_t budget = 1 << 20;
    backend_cache *c = backend_cache_new(TTL_MS, budget);
    json_t *big = json_array();
    for (int i = 0; i < 100; i++)
        json_array_append_new(big, json_pack("{s:i, s:s}", "quota", i, "unit", "MB"));
    char *text = json_dumps(big, JSON_COMPACT);
    json_decref(big);
    size_t text_len = strlen(text);
    backend_answer_release(put_text(c, BACKEND_CACHE_OFFERS, "tp", "924542610003", "k", text, T0));
    free(text);
    size_t counted = backend_cache_bytes(c);
    ck_assert_msg(counted > 4 * text_len, "counted %zu bytes for %zu of text", counted, text_len);
    backend_cache_free(c);
}
END_TEST

/* Threads mapping one cached answer while another replaces and forgets
 * it: every reader's answer stays whole until it releases it, and the
 * last holder frees it (ThreadSanitizer and ASan builds check the
 * hand-over; jansson's own reference count is not used across threads). */
typedef struct {
    backend_cache *c;
    atomic_int *stop;
    long reads;
} reader_arg;

static void *reader_main(void *arg) {
    reader_arg *r = arg;
    while (!atomic_load(r->stop)) {
        int64_t f;
        backend_answer *a =
            backend_cache_get(r->c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", T0, &f);
        if (!a) continue;
        const json_t *main_balance = json_object_get(backend_answer_json(a), "main");
        ck_assert(json_is_string(main_balance));
        r->reads++;
        backend_answer_release(a);
    }
    return NULL;
}

START_TEST(readers_and_a_writer_share_answers_across_threads) {
    enum { READERS = 3, WRITES = 2000 };
    backend_cache *c = backend_cache_new(TTL_MS, 1 << 20);
    atomic_int stop = 0;
    reader_arg r[READERS];
    pthread_t th[READERS];
    for (int i = 0; i < READERS; i++) {
        r[i] = (reader_arg){.c = c, .stop = &stop};
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader_main, &r[i]), 0);
    }
    for (int i = 0; i < WRITES; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"main\":\"100.00\",\"version\":%d}", i / 2);
        backend_answer_release(
            put_text(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", body, T0 + i));
        if (i % 10 == 9) backend_cache_forget(c, "tp", "924542610003", T0 + i);
    }
    atomic_store(&stop, 1);
    long reads = 0;
    for (int i = 0; i < READERS; i++) {
        pthread_join(th[i], NULL);
        reads += r[i].reads;
    }
    ck_assert_msg(reads > 0, "no reader ever found the answer");
    backend_cache_free(c);
}
END_TEST

/* A text byte-for-byte the same as the entry's takes the entry's parsed
 * answer, and its fetch time: the entry lives on from the new fetch. */
START_TEST(the_same_text_takes_the_entrys_parsed_answer) {
    backend_cache *c = backend_cache_new(TTL_MS, 1 << 20);
    const char *text = "{\"main\":\"100.00\"}";
    backend_answer *first =
        put_text(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", text, T0);
    size_t bytes = backend_cache_bytes(c);
    /* Expired at T0 + TTL_MS, fetched again: the same text. */
    int64_t again = T0 + TTL_MS + 5, f = -1;
    backend_answer *second =
        put_text(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", text, again);
    ck_assert_ptr_eq(second, first);
    ck_assert_uint_eq(backend_cache_bytes(c), bytes);
    backend_answer *hit =
        backend_cache_get(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", again + 1, &f);
    ck_assert_ptr_eq(hit, first);
    ck_assert_int_eq(f, again);
    backend_answer_release(hit);
    backend_answer_release(second);
    /* An answer fetched before the entry's keeps the entry's fetch time. */
    backend_answer_release(
        put_text(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", text, T0));
    hit = backend_cache_get(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", again + 1, &f);
    ck_assert_int_eq(f, again);
    backend_answer_release(hit);
    /* One byte different: parsed, and it replaces the entry. */
    backend_answer *changed = put_text(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en",
                                       "{\"main\":\"100.01\"}", again + 2);
    ck_assert_ptr_ne(changed, first);
    ck_assert_str_eq(json_string_value(json_object_get(backend_answer_json(changed), "main")),
                     "100.01");
    ck_assert_str_eq(json_string_value(json_object_get(backend_answer_json(first), "main")),
                     "100.00");
    backend_answer_release(changed);
    backend_answer_release(first);
    /* Another key, or another subscriber, with the same text: its own. */
    backend_answer *ur =
        put_text(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "ur", text, again);
    backend_answer *neighbour =
        put_text(c, BACKEND_CACHE_BALANCE, "tp", "924542610004", "en", text, again);
    ck_assert_ptr_ne(ur, neighbour);
    backend_answer_release(ur);
    backend_answer_release(neighbour);
    backend_cache_free(c);
}
END_TEST

/* After a purchase forgets the subscriber, the same text is parsed anew
 * (nothing is left to take it from); an answer that is not JSON is
 * refused and leaves the entry as it was. */
START_TEST(forget_and_malformed_answers) {
    backend_cache *c = backend_cache_new(TTL_MS, 1 << 20);
    const char *text = "{\"main\":\"100.00\"}";
    backend_answer *first =
        put_text(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", text, T0);
    backend_cache_forget(c, "tp", "924542610003", T0 + 1);
    backend_answer *after =
        put_text(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", text, T0 + 2);
    ck_assert_ptr_ne(after, first);
    backend_answer_release(first);
    int not_json = 0;
    const char *bad = "{\"main\":";
    ck_assert_ptr_null(backend_cache_put(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", bad,
                                         strlen(bad), T0 + 3, &not_json));
    ck_assert_int_eq(not_json, 1);
    int64_t f = -1;
    backend_answer *hit =
        backend_cache_get(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", T0 + 4, &f);
    ck_assert_ptr_eq(hit, after);
    ck_assert_int_eq(f, T0 + 2);
    backend_answer_release(hit);
    backend_answer_release(after);
    backend_cache_free(c);
}
END_TEST

/* The mapped answers kept beside a backend answer: per kind, for one
 * validUntil second, copied out, replaced by the next one kept. */
START_TEST(mapped_answers_are_kept_per_kind_and_second) {
    backend_cache *c = backend_cache_new(TTL_MS, 1 << 20);
    backend_answer *a =
        put_text(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", "{\"main\":1}", T0);
    size_t len = 0;
    int64_t until = T0 + TTL_MS; /* T0 is on a second */
    ck_assert_ptr_null(backend_answer_mapped(a, BACKEND_MAPPED_BALANCE, until, &len));
    backend_answer_keep_mapped(a, BACKEND_MAPPED_BALANCE, until, "{\"b\":1}", 7);
    char *text = backend_answer_mapped(a, BACKEND_MAPPED_BALANCE, until + 999, &len);
    ck_assert_ptr_nonnull(text);
    ck_assert_str_eq(text, "{\"b\":1}");
    ck_assert_uint_eq(len, 7);
    free(text);
    /* Another second, or the other kind: none. */
    ck_assert_ptr_null(backend_answer_mapped(a, BACKEND_MAPPED_BALANCE, until + 1000, &len));
    ck_assert_ptr_null(backend_answer_mapped(a, BACKEND_MAPPED_ACCOUNT_INFO, until, &len));
    backend_answer_keep_mapped(a, BACKEND_MAPPED_ACCOUNT_INFO, until, "{\"i\":1}", 7);
    backend_answer_keep_mapped(a, BACKEND_MAPPED_BALANCE, until + 1000, "{\"b\":2}", 7);
    ck_assert_ptr_null(backend_answer_mapped(a, BACKEND_MAPPED_BALANCE, until, &len));
    text = backend_answer_mapped(a, BACKEND_MAPPED_BALANCE, until + 1000, &len);
    ck_assert_str_eq(text, "{\"b\":2}");
    free(text);
    text = backend_answer_mapped(a, BACKEND_MAPPED_ACCOUNT_INFO, until, &len);
    ck_assert_str_eq(text, "{\"i\":1}");
    free(text);
    /* The same backend text again: the same answer, with what it keeps. */
    backend_answer *again =
        put_text(c, BACKEND_CACHE_BALANCE, "tp", "924542610003", "en", "{\"main\":1}", T0 + 1);
    ck_assert_ptr_eq(again, a);
    backend_answer_release(again);
    backend_answer_release(a);
    backend_cache_free(c); /* frees the kept texts (ASan) */
}
END_TEST

/* An /offers answer as the sandbox operator sends one: three offers with
 * names and descriptions in one language. */
static const char OFFERS[] =
    "{\"subscriberState\":\"GOOD_TO_GO\",\"offers\":["
    "{\"id\":\"tp-data-daily-3gb\",\"name\":\"3G Daily Bundle\",\"description\":\"3000 MB "
    "of internet for 24 hours\",\"quota\":{\"quotaBytes\":3145728000},\"cost\":{\"currency\":"
    "\"PKR\",\"value\":25},\"fundSource\":\"WALLET\",\"appType\":[\"GENERIC\"]},"
    "{\"id\":\"tp-social-daily\",\"name\":\"Daily Social Pack\",\"description\":\"1 GB for "
    "WhatsApp, Facebook and Twitter\",\"quota\":{\"quotaBytes\":1073741824},\"cost\":"
    "{\"currency\":\"PKR\",\"value\":12},\"fundSource\":\"WALLET\",\"appType\":[\"SOCIAL\"]},"
    "{\"id\":\"tp-voice-weekly\",\"name\":\"Weekly Minutes\",\"description\":\"300 minutes "
    "for a week\",\"quota\":{\"quotaMinutes\":300},\"cost\":{\"currency\":\"PKR\",\"value\":"
    "50},\"fundSource\":\"WALLET\",\"appType\":[\"GENERIC\"]}]}";

START_TEST(an_offers_answer_keeps_its_upsell_template) {
    static const tenant_operator op = {
        .id = "tp", .currency = "PKR", .currency_scale = 2, .default_language = "en"};
    keys_set keys;
    ck_assert_int_eq(keys_set_one(&keys, "unit-test-cache-upsell"), 0);
    mapping_ctx m = {.op = &op,
                     .service_provider = "testserviceprovider",
                     .subscriber = "924542610003",
                     .language = "en",
                     .now_ms = T0,
                     .offer_context_keys = &keys,
                     .offer_ttl_ms = 60000};
    backend_cache *c = backend_cache_new(TTL_MS, 1 << 20);
    backend_answer *a = put_text(c, BACKEND_CACHE_OFFERS, "tp", "924542610003", "en", OFFERS, T0);
    ck_assert_ptr_null(backend_answer_upsell(a, &m));
    char err[256];
    upsell_template *t = upsell_template_new(&m, backend_answer_json(a), err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    ck_assert_uint_eq(upsell_template_offers(t), 3);
    /* Kept: a real answer's template fits in its share of the budget. */
    backend_answer_keep_upsell(a, t);
    upsell_template *kept = backend_answer_upsell(a, &m);
    ck_assert_ptr_eq(kept, t);
    upsell_template_release(kept);
    /* Only for the same mapping inputs. */
    mapping_ctx supplementary = m;
    supplementary.plan_type = "supplementary";
    ck_assert_ptr_null(backend_answer_upsell(a, &supplementary));
    /* Replaced by another one; the first lives while held. */
    upsell_template *sup =
        upsell_template_new(&supplementary, backend_answer_json(a), err, sizeof err);
    ck_assert_uint_eq(upsell_template_offers(sup), 1);
    backend_answer_keep_upsell(a, sup);
    ck_assert_ptr_null(backend_answer_upsell(a, &m));
    kept = backend_answer_upsell(a, &supplementary);
    ck_assert_ptr_eq(kept, sup);
    upsell_template_release(kept);
    ck_assert_str_eq(upsell_template_plan_id(t, 2), "tp-voice-weekly");
    upsell_template_release(t);
    upsell_template_release(sup);
    /* The same text again: the same answer, with its template. */
    backend_answer *again =
        put_text(c, BACKEND_CACHE_OFFERS, "tp", "924542610003", "en", OFFERS, T0 + 1);
    ck_assert_ptr_eq(again, a);
    kept = backend_answer_upsell(again, &supplementary);
    ck_assert_ptr_eq(kept, sup);
    upsell_template_release(kept);
    backend_answer_release(again);
    backend_answer_release(a);
    backend_cache_free(c); /* frees the kept template (ASan) */
}
END_TEST

static Suite *cache_suite(void) {
    Suite *s = suite_create("offer_resolver_cache");
    TCase *tc = tcase_create("cache");
    tcase_add_test(tc, hit_until_expiry);
    tcase_add_test(tc, kind_key_operator_and_subscriber_are_all_part_of_the_key);
    tcase_add_test(tc, forget_drops_entries_and_answers_fetched_before_it);
    tcase_add_test(tc, newer_answer_replaces_older_never_the_reverse);
    tcase_add_test(tc, budget_drops_the_subscriber_used_longest_ago);
    tcase_add_test(tc, ttl_zero_caches_nothing);
    tcase_add_test(tc, a_reader_keeps_its_answer_after_forget_and_replace);
    tcase_add_test(tc, the_budget_counts_parsed_answers);
    tcase_add_test(tc, readers_and_a_writer_share_answers_across_threads);
    tcase_add_test(tc, the_same_text_takes_the_entrys_parsed_answer);
    tcase_add_test(tc, forget_and_malformed_answers);
    tcase_add_test(tc, mapped_answers_are_kept_per_kind_and_second);
    tcase_add_test(tc, an_offers_answer_keeps_its_upsell_template);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(cache_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
