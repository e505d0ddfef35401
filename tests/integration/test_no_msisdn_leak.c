/* A provider that only ever had a CPID never learns the MSISDN behind it.
 *
 * Drives the whole CPID flow against a real stack: a CPID by header
 * enrichment, upsellOffer with key_type=CPID, consent (register) by CPID, a
 * rich notification webhook at sp-sandbox (with its offers and signed
 * links), the refresh link (/rnf/.../offers), the shop page and a purchase
 * through its link, a purchase with an offerContext, and the purchase
 * callbacks at sp-sandbox (the provider asks for every purchase's,
 * "purchaseCallbacks": "all"). Every body and header answered to the provider
 * and every record sp-sandbox received is searched for the subscriber's
 * number (international and national form), as text and inside every
 * base64 / base64url run (so a readable token that merely encodes the
 * number is found too, as the old offerContext was). */
#include "shared/contracts/cpid.h"
#include "shared/plumbing/crypto.h"
#include "tests/lib/shop_form.h"
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BASE_PORT 19780
#define SP "testserviceprovider"
#define SUB "924542610003"        /* has offers in mno-sandbox */
#define SUB_NATIONAL "4542610003" /* without the country code */

static test_stack stack;
static char edge[64], sp[64];

static int has_number(const void *data, size_t len) {
    return memmem(data, len, SUB_NATIONAL, strlen(SUB_NATIONAL)) != NULL; /* SUB contains it */
}

static int b64_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '+' || c == '/';
}

/* 1 when `text` shows the number, directly or inside any run of base64
 * (either alphabet) decoded at any of the four alignments. */
static int shows_number(const char *text, size_t len) {
    if (has_number(text, len)) return 1;
    int found = 0;
    for (size_t i = 0; i < len && !found;) {
        if (!b64_char(text[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && b64_char(text[j])) j++;
        for (size_t off = 0; off < 4 && j - i >= 16 + off && !found; off++) {
            size_t n = (j - i - off) / 4 * 4;
            char *run = malloc(n + 1);
            ck_assert_ptr_nonnull(run);
            for (size_t k = 0; k < n; k++) {
                char c = text[i + off + k];
                run[k] = c == '+' ? '-' : c == '/' ? '_' : c;
            }
            run[n] = '\0';
            size_t dlen = 0;
            unsigned char *d = crypto_b64url_decode(run, &dlen);
            found = d && has_number(d, dlen);
            free(d);
            free(run);
        }
        i = j;
    }
    return found;
}

static void assert_no_msisdn(const char *what, const char *text, size_t len) {
    if (!text) return;
    ck_assert_msg(!shows_number(text, len), "%s shows the MSISDN (maybe base64): %.*s", what,
                  (int)(len > 2000 ? 2000 : len), text);
}

typedef struct {
    long status;
    char *body;
    size_t len;
    char *headers;
    size_t hlen;
} answer;

static size_t append(char **buf, size_t *len, const char *p, size_t n) {
    char *g = realloc(*buf, *len + n + 1);
    if (!g) return 0;
    memcpy(g + *len, p, n);
    *buf = g;
    *len += n;
    g[*len] = '\0';
    return n;
}

static size_t on_body(char *p, size_t size, size_t n, void *u) {
    answer *a = u;
    return append(&a->body, &a->len, p, size * n);
}

static size_t on_header(char *p, size_t size, size_t n, void *u) {
    answer *a = u;
    return append(&a->headers, &a->hlen, p, size * n);
}

/* One request as the provider makes it; its whole answer (status line,
 * headers, body) is checked for the number. headers: NULL-terminated. */
static void provider_request(const char *what, const char *method, const char *url,
                             const char *const *headers, const char *body, answer *a) {
    memset(a, 0, sizeof *a);
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    struct curl_slist *list = NULL;
    int typed = 0; /* a form's own Content-Type replaces JSON's */
    for (size_t i = 0; headers && headers[i]; i++) {
        list = curl_slist_append(list, headers[i]);
        if (strncmp(headers[i], "Content-Type:", 13) == 0) typed = 1;
    }
    if (body && !typed) list = curl_slist_append(list, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
    curl_slist_free_all(list);
    curl_easy_cleanup(c);
    ck_assert_msg(rc == CURLE_OK, "%s: %s", what, curl_easy_strerror(rc));
    assert_no_msisdn(what, a->headers, a->hlen);
    assert_no_msisdn(what, a->body, a->len);
}

static void answer_free(answer *a) {
    free(a->body);
    free(a->headers);
}

static json_t *answer_json(const answer *a) {
    return a->body && a->len ? json_loadb(a->body, a->len, 0, NULL) : NULL;
}

/* Every record sp-sandbox got of `kind` with transactionId tid (NULL: any),
 * each checked whole (body, authorization, ...). The first's body into
 * *first (caller decrefs) when given. The number of records. */
static int check_received(const char *kind, const char *tid, json_t **first) {
    long status = 0;
    json_t *j = test_sp_received(sp, kind, -1, 10000, &status);
    ck_assert_int_eq(status, 200);
    int n = 0;
    size_t i;
    json_t *rec;
    json_array_foreach(json_object_get(j, "received"), i, rec) {
        const char *t = json_string_value(json_object_get(rec, "transactionId"));
        if (tid && (!t || strcmp(t, tid) != 0)) continue;
        char *text = json_dumps(rec, JSON_COMPACT);
        ck_assert_ptr_nonnull(text);
        assert_no_msisdn(kind, text, strlen(text));
        free(text);
        if (n++ == 0 && first) *first = json_incref(json_object_get(rec, "body"));
    }
    json_decref(j);
    return n;
}

/* Polls sp-sandbox (bounded, ~30 s) for a record of kind with tid. */
static int wait_received(const char *kind, const char *tid, json_t **first) {
    for (int i = 0; i < 600; i++) {
        if (check_received(kind, tid, NULL) > 0) return check_received(kind, tid, first);
        test_sleep_ms(50);
    }
    return 0;
}

START_TEST(the_cpid_flow_never_shows_the_msisdn) {
    answer a;
    char url[1024], tid[64], cpid[CPID_MAX_LEN + 1];

    /* 1. A CPID: the answer goes to the app, so it is checked too. */
    const char *xmsisdn[] = {"X-MSISDN: " SUB, NULL};
    snprintf(url, sizeof url, "%s/cpid?app=" SP, edge);
    provider_request("GET /cpid", "GET", url, xmsisdn, NULL, &a);
    ck_assert_int_eq(a.status, 200);
    json_t *j = answer_json(&a);
    ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "cpid")));
    snprintf(cpid, sizeof cpid, "%s", json_string_value(json_object_get(j, "cpid")));
    json_decref(j);
    answer_free(&a);
    char *e = curl_easy_escape(NULL, cpid, 0);

    /* 2. upsellOffer by CPID: offers with their offerContexts. */
    snprintf(url, sizeof url, "%s/std/" SP "/%s/upsellOffer?key_type=CPID", edge, e);
    provider_request("upsellOffer", "GET", url, NULL, NULL, &a);
    ck_assert_int_eq(a.status, 200);
    j = answer_json(&a);
    json_t *offers = json_object_get(j, "offers");
    ck_assert_int_gt(json_array_size(offers), 0);
    char plan[128], ctx[4096];
    /* tp-social-daily completes at once (test_notify buys it too). */
    json_t *chosen = NULL, *o;
    size_t i;
    json_array_foreach(offers, i, o) {
        if (strcmp(json_string_value(json_object_get(o, "planId")), "tp-social-daily") == 0)
            chosen = o;
    }
    ck_assert_ptr_nonnull(chosen);
    ck_assert_ptr_nonnull(json_string_value(json_object_get(chosen, "offerContext")));
    snprintf(plan, sizeof plan, "%s", json_string_value(json_object_get(chosen, "planId")));
    snprintf(ctx, sizeof ctx, "%s", json_string_value(json_object_get(chosen, "offerContext")));
    json_decref(j);
    answer_free(&a);

    /* 3. Consent by CPID. */
    snprintf(url, sizeof url, "%s/std/" SP "/%s/register?key_type=CPID", edge, e);
    snprintf(tid, sizeof tid, "leak-reg-%ld", (long)getpid());
    char body[1024];
    snprintf(body, sizeof body, "{\"transactionId\":\"%s\",\"types\":[\"low-monetary-balance\"]}",
             tid);
    provider_request("register", "POST", url, NULL, body, &a);
    ck_assert_int_eq(a.status, 200);
    answer_free(&a);

    /* 4. The operator reports an event by MSISDN (operator to Millom: its
     *    own data); the provider's webhook must not carry the number. */
    snprintf(tid, sizeof tid, "leak-notify-%ld", (long)getpid());
    snprintf(url, sizeof url, "%s/notify/tp/v1/single?idValue=" SUB "&idType=MSISDN", edge);
    snprintf(body, sizeof body,
             "{\"transactionId\":\"%s\",\"type\":\"low-monetary-balance\",\"messages\":"
             "[{\"language\":\"en\",\"message\":\"almost out\"}]}",
             tid);
    test_response r;
    ck_assert_int_eq(test_http("POST", url, NULL, body, &r), 0);
    ck_assert_int_eq(r.status, 202);
    test_response_free(&r);
    json_t *webhook = NULL;
    ck_assert_int_eq(wait_received("notification", tid, &webhook), 1);
    ck_assert_int_gt(json_array_size(json_object_get(webhook, "offers")), 0);
    const char *refresh = json_string_value(json_object_get(webhook, "refresh"));
    const char *shop = json_string_value(json_object_get(webhook, "shop"));
    ck_assert_ptr_nonnull(refresh);
    ck_assert_ptr_nonnull(shop);

    /* 5. The refresh link (/rnf/.../offers) and the shop page. */
    provider_request("rnf offers", "GET", refresh, NULL, NULL, &a);
    ck_assert_int_eq(a.status, 200);
    j = answer_json(&a);
    ck_assert_int_gt(json_array_size(json_object_get(j, "offers")), 0);
    ck_assert_ptr_nonnull(json_string_value(
        json_object_get(json_array_get(json_object_get(j, "offers"), 0), "offerContext")));
    json_decref(j);
    answer_free(&a);
    provider_request("rnf shop", "GET", shop, NULL, NULL, &a);
    ck_assert_int_eq(a.status, 200);
    char *buy = NULL, *form = NULL;
    ck_assert_int_eq(test_shop_form(a.body, 0, edge, &buy, &form, NULL, 0), 0);
    answer_free(&a);
    json_decref(webhook);

    /* 6. A purchase through the shop's form. */
    const char *const ft[] = {TEST_FORM_TYPE, NULL};
    provider_request("rnf purchase", "POST", buy, ft, form, &a);
    free(buy);
    free(form);
    ck_assert_msg(a.status == 200 || a.status == 202, "shop purchase: %ld %s", a.status,
                  a.body ? a.body : "");
    j = answer_json(&a);
    char shop_tid[128];
    ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "transid")));
    snprintf(shop_tid, sizeof shop_tid, "%s", json_string_value(json_object_get(j, "transid")));
    json_decref(j);
    answer_free(&a);

    /* 7. A purchase by CPID with the offerContext from upsellOffer. */
    snprintf(tid, sizeof tid, "leak-buy-%ld", (long)getpid());
    snprintf(url, sizeof url, "%s/std/" SP "/%s/purchasePlan?key_type=CPID", edge, e);
    json_t *req = json_pack("{s:s, s:s, s:s}", "transid", tid, "planid", plan, "offercontext", ctx);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    provider_request("purchasePlan", "POST", url, NULL, text, &a);
    free(text);
    ck_assert_msg(a.status == 200 || a.status == 202, "purchase: %ld %s", a.status,
                  a.body ? a.body : "");
    answer_free(&a);

    /* 8. The provider callbacks of both purchases, and then everything
     *    sp-sandbox ever received from this stack. */
    ck_assert_int_ge(wait_received("callback", tid, NULL), 1);
    ck_assert_int_ge(wait_received("callback", shop_tid, NULL), 1);
    ck_assert_int_gt(check_received("notification", NULL, NULL), 0);
    ck_assert_int_ge(check_received("callback", NULL, NULL), 2);
    curl_free(e);
}
END_TEST

/* The check itself finds the number, plainly and base64-encoded (so a
 * pass above means something). */
START_TEST(the_check_finds_the_number) {
    const char *claims = "{\"p\":\"tp-data-daily-3gb\",\"s\":\"" SUB "\",\"sp\":\"x\"}";
    char *b64 = crypto_b64url_encode(claims, strlen(claims));
    char text[512];
    snprintf(text, sizeof text, "{\"offerContext\":\"%s.c2lnbmF0dXJl\"}", b64);
    free(b64);
    ck_assert(!has_number(text, strlen(text)));  /* not as plain digits */
    ck_assert(shows_number(text, strlen(text))); /* but inside the base64 */
    ck_assert(!shows_number("{\"offerContext\":\"bm90aGluZyBoZXJlIGF0IGFsbA\"}", 42));
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char public_url[64];
    snprintf(public_url, sizeof public_url, "MILLOM_PUBLIC_URL=http://127.0.0.1:%d", BASE_PORT);
    const char *env[] = {"MILLOM_PURCHASE_TIMER_S=0", public_url, NULL};
    /* Callbacks also for the purchases answered 200, so their bodies are
     * searched too. */
    setenv("MILLOM_TEST_PURCHASE_CALLBACKS", "all", 1);
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(sp, sizeof sp, "http://127.0.0.1:%d", stack.sp_port);

    Suite *s = suite_create("no_msisdn_leak");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, the_check_finds_the_number);
    tcase_add_test(tc, the_cpid_flow_never_shows_the_msisdn);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
