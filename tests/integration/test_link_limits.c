/* Limits on the signed rich-notification links (issue 16 item 5,
 * routes_rnf.c, rnf_limits.h), on a real stack with small limits:
 *   - a burst on one link gets 429 with Retry-After;
 *   - a burst over many links of one subscriber gets 429 (per CPID);
 *   - many /offers hits make at most a couple of backend /offers calls
 *     (offer-resolver's offers cache), counted at mno-sandbox;
 *   - the shop page carries the security headers and <form method="post">,
 *     no purchase link; its form POST buys once, the same form again is the
 *     same transaction (one activation at the operator);
 *   - an expired purchase link or form, or one living longer than allowed,
 *     is 401; a form POST that is not a form is 415;
 *   - purchases beyond the hourly cap are 429 with Retry-After.
 * Each case uses its own subscriber, so their limits do not meet. */
#include "shared/contracts/signed_link.h"
#include "tests/lib/shop_form.h"
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#define BASE_PORT 20280
#define SP "testserviceprovider"

static test_stack stack;
static char edge[64], mno[64];

static int64_t wall_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static char *new_cpid(const char *msisdn) {
    char url[256], hdr[64];
    snprintf(url, sizeof url, "%s/cpid?app=" SP, edge);
    snprintf(hdr, sizeof hdr, "X-MSISDN: %s", msisdn);
    const char *h[] = {hdr, NULL};
    long status = 0;
    json_t *j = test_get_json(url, h, &status);
    ck_assert_int_eq(status, 200);
    char *cpid = strdup(json_string_value(json_object_get(j, "cpid")));
    json_decref(j);
    return cpid;
}

static char *link_to(const char *cpid, const char *action, const signed_link_param *params,
                     size_t n, long ttl_s) {
    char path[512];
    snprintf(path, sizeof path, "/rnf/" SP "/tp/%s/%s", cpid, action);
    char *url = signed_link_make(edge, path, params, n, ttl_s, wall_ms());
    ck_assert_ptr_nonnull(url);
    return url;
}

/* One request with the answer's headers kept (as text). */
typedef struct {
    long status;
    char *body, *headers;
    size_t len, hlen;
} answer;

static size_t append(char **buf, size_t *len, const char *p, size_t n) {
    char *g = realloc(*buf, *len + n + 1);
    if (!g) return 0;
    memcpy(g + *len, p, n);
    *len += n;
    g[*len] = '\0';
    *buf = g;
    return n;
}
static size_t on_body(char *p, size_t s, size_t n, void *u) {
    answer *a = u;
    return append(&a->body, &a->len, p, s * n);
}
static size_t on_header(char *p, size_t s, size_t n, void *u) {
    answer *a = u;
    return append(&a->headers, &a->hlen, p, s * n);
}

static void request(const char *method, const char *url, const char *ctype, const char *body,
                    answer *a) {
    memset(a, 0, sizeof *a);
    CURL *c = curl_easy_init();
    struct curl_slist *list = NULL;
    char h[128];
    if (ctype) {
        snprintf(h, sizeof h, "Content-Type: %s", ctype);
        list = curl_slist_append(list, h);
    }
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
    ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, url, curl_easy_strerror(rc));
    if (!a->body) a->body = strdup("");
    if (!a->headers) a->headers = strdup("");
}

static void answer_free(answer *a) {
    free(a->body);
    free(a->headers);
}

/* The value of header name (first occurrence) into out; 0 if present. */
static int header(const answer *a, const char *name, char *out, size_t outlen) {
    size_t n = strlen(name);
    for (const char *p = a->headers; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            while (*p == ' ') p++;
            size_t k = strcspn(p, "\r\n");
            snprintf(out, outlen, "%.*s", (int)k, p);
            return 0;
        }
    }
    return -1;
}

static void assert_header(const answer *a, const char *name, const char *want) {
    char v[512];
    ck_assert_msg(header(a, name, v, sizeof v) == 0, "no %s header", name);
    ck_assert_msg(strcmp(v, want) == 0, "%s: %s, want %s", name, v, want);
}

/* Every /rnf answer's security headers. */
static void assert_rnf_headers(const answer *a) {
    assert_header(a, "X-Frame-Options", "DENY");
    assert_header(a, "X-Content-Type-Options", "nosniff");
    assert_header(a, "Referrer-Policy", "no-referrer");
    assert_header(a, "Cache-Control", "no-store");
    char csp[512];
    ck_assert_int_eq(header(a, "Content-Security-Policy", csp, sizeof csp), 0);
    ck_assert_ptr_nonnull(strstr(csp, "default-src 'none'"));
    ck_assert_ptr_nonnull(strstr(csp, "form-action 'self'"));
    ck_assert_ptr_nonnull(strstr(csp, "frame-ancestors 'none'"));
}

/* A 429 with an ErrorDocument TOO_MANY_REQUESTS and Retry-After >= 1;
 * returns the Retry-After. */
static long assert_429(const answer *a) {
    ck_assert_int_eq(a->status, 429);
    json_t *j = json_loads(a->body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "cause")), "TOO_MANY_REQUESTS");
    ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "errorMessage")));
    json_decref(j);
    char v[32];
    ck_assert_int_eq(header(a, "Retry-After", v, sizeof v), 0);
    long s = strtol(v, NULL, 10);
    ck_assert_int_ge(s, 1);
    assert_rnf_headers(a);
    return s;
}

static long mno_stat(const char *name) {
    char url[128];
    snprintf(url, sizeof url, "%s/admin/stats", mno);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    long v = (long)json_integer_value(json_object_get(j, name));
    json_decref(j);
    return v;
}

/* MILLOM_LINK_RATE_PER_LINK=3: 3 at once, then one every 20 s. */
START_TEST(a_burst_on_one_link_is_429) {
    char *cpid = new_cpid("924542610003");
    char *url = link_to(cpid, "ping", NULL, 0, 600);
    answer a;
    for (int i = 0; i < 3; i++) {
        request("GET", url, NULL, NULL, &a);
        ck_assert_msg(a.status == 200, "request %d: %ld %s", i, a.status, a.body);
        assert_rnf_headers(&a);
        answer_free(&a);
    }
    /* A token comes back every 20 s: unless each of these waits that
     * long, one of them is refused. */
    int limited = 0;
    for (int i = 0; i < 5 && !limited; i++) {
        request("GET", url, NULL, NULL, &a);
        if (a.status != 200) {
            assert_429(&a);
            limited = 1;
        }
        answer_free(&a);
    }
    ck_assert_msg(limited, "no 429 on a burst of 8 on one link");
    /* another link still works */
    char *other = link_to(cpid, "ping", NULL, 0, 600);
    request("GET", other, NULL, NULL, &a);
    ck_assert_int_eq(a.status, 200);
    answer_free(&a);
    free(other);
    free(url);
    free(cpid);
}
END_TEST

/* MILLOM_LINK_RATE_PER_CPID=6: fresh links (each under its own limit) for
 * one subscriber, even under fresh CPIDs, run into the subscriber's. */
START_TEST(a_burst_over_one_subscribers_links_is_429) {
    int limited = 0, ok = 0;
    answer a;
    for (int i = 0; i < 14 && !limited; i++) {
        char *cpid = new_cpid("924542610006");
        char *url = link_to(cpid, "offers", NULL, 0, 600);
        request("GET", url, NULL, NULL, &a);
        if (a.status == 200)
            ok++;
        else {
            ck_assert_int_ge(ok, 6);
            assert_429(&a);
            limited = 1;
        }
        answer_free(&a);
        free(url);
        free(cpid);
    }
    ck_assert_msg(limited, "no 429 after %d requests for one subscriber", ok);
}
END_TEST

/* Many /offers and /shop hits for one subscriber: the backend /offers
 * calls stay bounded (MILLOM_CACHE_TTL_S=300 in this stack: one call,
 * two should an unrelated call fall in between). */
START_TEST(offers_hits_are_served_from_the_cache) {
    char *cpid = new_cpid("924542610001");
    long before = mno_stat("offers");
    answer a;
    for (int i = 0; i < 5; i++) {
        char *url = link_to(cpid, i % 2 ? "shop" : "offers", NULL, 0, 600);
        request("GET", url, NULL, NULL, &a);
        ck_assert_msg(a.status == 200, "hit %d: %ld %s", i, a.status, a.body);
        answer_free(&a);
        free(url);
    }
    long calls = mno_stat("offers") - before;
    ck_assert_msg(calls >= 1 && calls <= 2, "5 hits made %ld backend /offers calls", calls);
    free(cpid);
}
END_TEST

START_TEST(shop_page_posts_forms_and_buys_once) {
    char *cpid = new_cpid("924542610003");
    char *url = link_to(cpid, "shop", NULL, 0, 600);
    answer a;
    request("GET", url, NULL, NULL, &a);
    ck_assert_int_eq(a.status, 200);
    assert_rnf_headers(&a);
    char csp[512];
    header(&a, "Content-Security-Policy", csp, sizeof csp);
    ck_assert_ptr_nonnull(strstr(csp, "style-src 'unsafe-inline'")); /* the page's <style> */
    ck_assert_ptr_null(strstr(a.body, "<script"));
    ck_assert_int_gt(test_shop_form_count(a.body), 0);
    ck_assert_ptr_nonnull(strstr(a.body, "<form method=\"post\""));
    ck_assert_ptr_null(strstr(a.body, "<a "));
    ck_assert_ptr_null(strstr(a.body, "purchasePlan?"));
    ck_assert_ptr_null(strstr(a.body, "method=\"get\""));
    char *buy, *form, tid[128] = "";
    ck_assert_int_eq(test_shop_form(a.body, 0, edge, &buy, &form, tid, sizeof tid), 0);
    ck_assert_ptr_nonnull(strstr(form, "signature="));
    ck_assert_ptr_nonnull(strstr(form, "expirySeconds="));
    ck_assert_str_ne(tid, "");
    answer_free(&a);

    /* not a form: 415, nothing bought */
    request("POST", buy, "application/json", "{}", &a);
    ck_assert_int_eq(a.status, 415);
    assert_rnf_headers(&a);
    answer_free(&a);
    /* a tampered form: 401 */
    char *bad = strdup(form);
    strstr(bad, "signature=")[10] ^= 1;
    request("POST", buy, "application/x-www-form-urlencoded", bad, &a);
    ck_assert_int_eq(a.status, 401);
    answer_free(&a);
    free(bad);

    long before = mno_stat("activate");
    request("POST", buy, "application/x-www-form-urlencoded", form, &a);
    ck_assert_msg(a.status == 200 || a.status == 202, "form purchase: %ld %s", a.status, a.body);
    assert_rnf_headers(&a);
    json_t *j = json_loads(a.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "transid")), tid);
    json_decref(j);
    answer_free(&a);
    /* the same form again (a double tap, a reload): the same transaction */
    request("POST", buy, "application/x-www-form-urlencoded", form, &a);
    ck_assert_msg(a.status == 200 || a.status == 202 || a.status == 409, "again: %ld %s", a.status,
                  a.body);
    if (a.status != 409) {
        j = json_loads(a.body, 0, NULL);
        ck_assert_str_eq(json_string_value(json_object_get(j, "transid")), tid);
        json_decref(j);
    }
    answer_free(&a);
    /* one activation at the operator, however long it takes to settle */
    char mgmt[512];
    snprintf(mgmt, sizeof mgmt, "%s/mgmt/tp/purchases/%s", edge, tid);
    const char *state = NULL;
    long status = 0;
    for (int i = 0; i < 100; i++) {
        j = test_get_json(mgmt, NULL, &status);
        state = json_string_value(json_object_get(j, "state"));
        int done = status == 200 && state && strcmp(state, "completed") == 0;
        json_decref(j);
        if (done) break;
        test_sleep_ms(100);
    }
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(mno_stat("activate") - before, 1);
    free(buy);
    free(form);
    free(url);
    free(cpid);
}
END_TEST

START_TEST(expired_and_long_lived_purchase_links_are_401) {
    char *cpid = new_cpid("924542610002");
    signed_link_param p[] = {{"planId", "tp-music-daily"}, {"transactionId", "links-expired-1"}};
    answer a;
    /* expired GET link */
    char *url = link_to(cpid, "purchasePlan", p, 2, -5);
    request("GET", url, NULL, NULL, &a);
    ck_assert_int_eq(a.status, 401);
    assert_rnf_headers(&a);
    ck_assert_ptr_nonnull(strstr(a.body, "UNAUTHORIZED"));
    answer_free(&a);
    free(url);
    /* expired form POST: the same fields, as the shop would render them */
    char path[512];
    snprintf(path, sizeof path, "/rnf/" SP "/tp/%s/purchasePlan", cpid);
    signed_link_form f;
    ck_assert_int_eq(signed_link_make_form(path, p, 2, -5, wall_ms(), &f), 0);
    char body[1024], full[1024];
    snprintf(body, sizeof body,
             "planId=tp-music-daily&transactionId=links-expired-1&uuid=%s&expirySeconds=%s"
             "&signature=%s",
             f.uuid, f.expiry, f.signature);
    snprintf(full, sizeof full, "%s%s", edge, f.action);
    free(f.action);
    request("POST", full, "application/x-www-form-urlencoded", body, &a);
    ck_assert_int_eq(a.status, 401);
    answer_free(&a);
    /* a purchase link living longer than MILLOM_LINK_PURCHASE_TTL_S (600) */
    url = link_to(cpid, "purchasePlan", p, 2, 7200);
    request("GET", url, NULL, NULL, &a);
    ck_assert_int_eq(a.status, 401);
    answer_free(&a);
    free(url);
    /* a shop link living longer than MILLOM_LINK_SHOP_TTL_S (3600); a
     * read-only offers link may */
    url = link_to(cpid, "shop", NULL, 0, 86400);
    request("GET", url, NULL, NULL, &a);
    ck_assert_int_eq(a.status, 401);
    answer_free(&a);
    free(url);
    url = link_to(cpid, "offers", NULL, 0, 86400);
    request("GET", url, NULL, NULL, &a);
    ck_assert_int_eq(a.status, 200);
    answer_free(&a);
    free(url);
    free(cpid);
}
END_TEST

/* MILLOM_LINK_PURCHASES_PER_HOUR=2. The attempts count whatever the
 * operator answers (this subscriber is roaming), repeats do not. */
START_TEST(purchases_beyond_the_hourly_cap_are_429) {
    char *cpid = new_cpid("924542610004");
    answer a;
    char tids[3][64];
    for (int i = 0; i < 3; i++) {
        snprintf(tids[i], sizeof tids[i], "links-cap-%ld-%d", (long)getpid(), i);
        signed_link_param p[] = {{"planId", "tp-music-daily"}, {"transactionId", tids[i]}};
        char *url = link_to(cpid, "purchasePlan", p, 2, 300);
        request("GET", url, NULL, NULL, &a);
        if (i < 2) {
            ck_assert_msg(a.status != 429, "purchase %d: 429 under the cap", i);
        } else {
            long retry = assert_429(&a);
            ck_assert_int_gt(retry, 60); /* the hour's oldest purchase leaves in ~1 h */
            ck_assert_int_le(retry, 3600);
        }
        answer_free(&a);
        /* a repeat of a counted transaction is not a new purchase */
        if (i == 1) {
            request("GET", url, NULL, NULL, &a);
            ck_assert_int_ne(a.status, 429);
            answer_free(&a);
        }
        free(url);
    }
    free(cpid);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    unsetenv("MILLOM_LINK_KEY"); /* the sandbox key, like the stack */
    const char *env[] = {"MILLOM_LINK_RATE_PER_LINK=3",
                         "MILLOM_LINK_RATE_PER_CPID=6",
                         "MILLOM_LINK_PURCHASES_PER_HOUR=2",
                         "MILLOM_LINK_PURCHASE_TTL_S=600",
                         "MILLOM_LINK_SHOP_TTL_S=3600",
                         "MILLOM_CACHE_TTL_S=300",
                         NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(mno, sizeof mno, "http://127.0.0.1:%d", stack.mno_port);

    Suite *s = suite_create("link_limits");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, offers_hits_are_served_from_the_cache);
    tcase_add_test(tc, a_burst_on_one_link_is_429);
    tcase_add_test(tc, a_burst_over_one_subscribers_links_is_429);
    tcase_add_test(tc, shop_page_posts_forms_and_buys_once);
    tcase_add_test(tc, expired_and_long_lived_purchase_links_are_401);
    tcase_add_test(tc, purchases_beyond_the_hourly_cap_are_429);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
