/* api-edge's route table (routes.h): what it says about every endpoint,
 * and the matcher (path parameters, trailing slashes, percent-encoding,
 * 404 against 405). */
#include "services/api-edge/auth.h"
#include "services/api-edge/edge.h"
#include "services/api-edge/request_http.h"
#include "services/api-edge/routes.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static edge_match find(const char *method, const char *path) {
    edge_match m;
    edge_route_find(method, path, &m);
    ck_assert_ptr_nonnull(m.route);
    return m;
}

/* The row answering method and path (status 0), by pattern. */
static void routed(const char *method, const char *path, const char *pattern) {
    edge_match m = find(method, path);
    ck_assert_msg(m.status == 0, "%s %s: status %d", method, path, m.status);
    ck_assert_msg(strcmp(m.route->pattern, pattern) == 0, "%s %s: row %s", method, path,
                  m.route->pattern);
    ck_assert_ptr_nonnull(m.route->methods);
}

static void not_found(const char *method, const char *path) {
    edge_match m = find(method, path);
    ck_assert_msg(m.status == 404, "%s %s: status %d (row %s)", method, path, m.status,
                  m.route->pattern);
    ck_assert_ptr_null(m.route->methods); /* a catch-all */
}

static void not_allowed(const char *method, const char *path, const char *allow) {
    edge_match m = find(method, path);
    ck_assert_msg(m.status == 405, "%s %s: status %d", method, path, m.status);
    ck_assert_str_eq(m.allow, allow);
}

static int is_public_pattern(const char *p) {
    static const char *const public_paths[] = {
        "/oauth/v1/token", "/cpid",    "/healthz",
        "/readyz",         "/metrics", "/openapi/millom-extensions.yaml"};
    for (size_t i = 0; i < sizeof public_paths / sizeof public_paths[0]; i++)
        if (strcmp(p, public_paths[i]) == 0) return 1;
    /* signed links: the rich notifications' and the top-up donor's page */
    return strncmp(p, "/rnf/", 5) == 0 || strncmp(p, "/topup/", 7) == 0;
}

/* The README's scope table, walked: every route but the public ones needs
 * a token with a scope and names the tenant it must belong to; the public
 * ones are exactly the token endpoint, /cpid, health, metrics, the
 * OpenAPI file and the signed links. */
START_TEST(every_route_not_public_has_a_scope) {
    int seen_public[6] = {0}, seen_rnf = 0;
    const char *const expect_public[] = {"/oauth/v1/token", "/cpid",
                                         "/healthz",        "/readyz",
                                         "/metrics",        "/openapi/millom-extensions.yaml"};
    for (size_t i = 0; i < edge_routes_count; i++) {
        const edge_route_row *r = &edge_routes[i];
        ck_assert_ptr_nonnull(r->pattern);
        if (!r->methods) { /* a catch-all answers 404: a token, or a signed link's area */
            ck_assert_msg(r->handler == NULL, "%s", r->pattern);
            ck_assert_msg(r->auth == EDGE_AUTH_TOKEN || strcmp(r->pattern, "/rnf/**") == 0 ||
                              strcmp(r->pattern, "/topup/**") == 0,
                          "%s", r->pattern);
            continue;
        }
        if (r->auth == EDGE_AUTH_TOKEN) {
            ck_assert_msg(r->scope && r->scope[0], "%s has no scope", r->pattern);
            ck_assert_msg(r->bind != EDGE_BIND_NONE, "%s names no tenant", r->pattern);
            ck_assert_msg(!is_public_pattern(r->pattern), "%s needs a token", r->pattern);
        } else {
            ck_assert_msg(is_public_pattern(r->pattern), "%s is public", r->pattern);
            ck_assert_ptr_null(r->scope);
            if (strncmp(r->pattern, "/rnf/", 5) == 0) {
                ck_assert_int_eq(r->auth, EDGE_AUTH_SIGNED_LINK);
                seen_rnf++;
            }
            for (size_t k = 0; k < 6; k++)
                if (strcmp(r->pattern, expect_public[k]) == 0) seen_public[k]++;
        }
    }
    for (size_t k = 0; k < 6; k++) ck_assert_msg(seen_public[k] == 1, "%s", expect_public[k]);
    ck_assert_int_eq(find("GET", "/openapi/millom-extensions.yaml").route->auth, EDGE_AUTH_NONE);
    ck_assert_int_eq(seen_rnf, 5); /* offers, ping, purchasePlan, shop, unsubscribe */
    ck_assert_int_eq(find("GET", "/cpid").route->auth, EDGE_AUTH_OPERATOR_CIDR);
    ck_assert_int_eq(find("POST", "/oauth/v1/token").route->auth, EDGE_AUTH_NONE);
    /* The last row takes every other path: a token, then 404. */
    const edge_route_row *last = &edge_routes[edge_routes_count - 1];
    ck_assert_str_eq(last->pattern, "/**");
    ck_assert_int_eq(last->auth, EDGE_AUTH_TOKEN);
}
END_TEST

/* Every row is reachable: a path made from its pattern reaches it (no
 * earlier row shadows it), with each method it lists. */
START_TEST(every_row_is_reachable) {
    for (size_t i = 0; i < edge_routes_count; i++) {
        const edge_route_row *r = &edge_routes[i];
        if (!r->methods) continue;
        char path[512] = "";
        size_t used = 0;
        for (const char *p = r->pattern; *p;) {
            if (*p == '{') {
                const char *close = strchr(p, '}');
                ck_assert_ptr_nonnull(close);
                used += (size_t)snprintf(path + used, sizeof path - used, "v%zu", used);
                p = close + 1;
            } else {
                path[used++] = *p++;
                path[used] = '\0';
            }
        }
        char methods[32];
        snprintf(methods, sizeof methods, "%s", r->methods);
        for (char *save = NULL, *m = strtok_r(methods, " ", &save); m;
             m = strtok_r(NULL, " ", &save)) {
            edge_match got = find(m, path);
            ck_assert_msg(got.status == 0 && got.route == r, "%s %s reaches %s", m, path,
                          got.route->pattern);
        }
        /* and a parameter of an unknown name never matches */
        edge_params p;
        ck_assert(!edge_pattern_match("/x/{nosuch}", 0, 0, "/x/y", &p));
    }
}
END_TEST

START_TEST(parameters_are_extracted_typed) {
    edge_match m = find("GET", "/std/sp1/tp/924542610003/balance");
    ck_assert_int_eq(m.status, 0);
    ck_assert(m.route->handler == routes_std);
    ck_assert_int_eq(m.route->action, STD_BALANCE);
    ck_assert_str_eq(m.params.provider, "sp1");
    ck_assert_str_eq(m.params.op, "tp");
    ck_assert_str_eq(m.params.subscriber, "924542610003");
    std_path sp;
    edge_std_path(&m, &sp);
    ck_assert_str_eq(sp.provider, "sp1");
    ck_assert_str_eq(sp.op, "tp");
    ck_assert_int_eq(sp.action, STD_BALANCE);

    m = find("POST", "/std/sp1/924542610003/purchasePlan");
    ck_assert(m.route->handler == routes_purchase);
    ck_assert_str_eq(m.params.op, ""); /* the operator comes from the number */
    ck_assert_str_eq(m.params.subscriber, "924542610003");
    /* the last segment is the action */
    m = find("GET", "/std/a/balance/c/upsellOffer");
    ck_assert_int_eq(m.route->action, STD_UPSELL_OFFER);
    ck_assert_str_eq(m.params.op, "balance");
    ck_assert(find("POST", "/std/sp1/924542610003/register").route->handler == routes_register);

    m = find("GET", "/rnf/sp1/tp/abc,41001/shop");
    ck_assert(m.route->handler == routes_rnf);
    ck_assert_int_eq(m.route->action, RNF_SHOP);
    ck_assert_str_eq(m.params.cpid, "abc,41001");
    ck_assert_ptr_eq(m.route->headers, edge_rnf_headers);
    m = find("POST", "/rnf/sp1/tp/abc,41001/purchasePlan");
    ck_assert_int_eq(m.route->action, RNF_PURCHASE);

    m = find("GET", "/mgmt/tp/purchases/TX-0123456789");
    ck_assert(m.route->handler == routes_mgmt_purchase);
    ck_assert_str_eq(m.params.op, "tp");
    ck_assert_str_eq(m.params.transid, "TX-0123456789");
    ck_assert(find("GET", "/mgmt/tp/purchases").route->handler == routes_mgmt_purchases);
    ck_assert(find("GET", "/mgmt/tp/settlements").route->handler == routes_settlement);
    ck_assert(find("GET", "/mgmt/tp/offer-performance").route->handler == routes_settlement);
    ck_assert(find("GET", "/mgmt/tp/settlements").route->action !=
              find("GET", "/mgmt/tp/offer-performance").route->action);
    ck_assert(find("GET", "/mgmt/tp/consents").route->handler == routes_consents);

    m = find("POST", "/callback/v1/tp");
    ck_assert(m.route->handler == routes_callbacks);
    ck_assert_int_eq(m.route->action, CALLBACK_MILLOM);
    ck_assert_str_eq(m.params.op, "tp");
    m = find("POST", "/activationCallback/tp");
    ck_assert_int_eq(m.route->action, CALLBACK_BACKEND);

    m = find("POST", "/notify/tp/v1/single");
    ck_assert(m.route->handler == routes_notify);
    ck_assert_str_eq(m.params.op, "tp");
    char scope[96];
    edge_match_scope(&m, scope, sizeof scope);
    ck_assert_str_eq(scope, "cco.dd.notify.tp.single");
    m = find("POST", "/notify/tp/v1/bulk");
    ck_assert(m.route->handler == routes_notify_bulk);
    edge_match_scope(&m, scope, sizeof scope);
    ck_assert_str_eq(scope, "cco.dd.notify.tp.bulk");
    m = find("GET", "/rnf/sp1/tp/abc/unsubscribe");
    ck_assert(m.route->handler == routes_rnf);
    ck_assert_int_eq(m.route->action, RNF_UNSUBSCRIBE);

    m = find("POST", "/sp1/tp/registerCpid");
    ck_assert(m.route->handler == routes_cpid_register);
    ck_assert_str_eq(m.params.provider, "sp1");
    ck_assert_str_eq(m.params.op, "tp");
    ck_assert(find("GET", "/cpid").route->handler == routes_cpid_get);
    ck_assert(find("POST", "/oauth/v1/token").route->handler == routes_oauth_token);
}
END_TEST

/* A parameter is non-empty and fits its field; longer is no route (404),
 * as the sscanf widths and segment copies had it. */
START_TEST(parameter_sizes) {
    char sp64[65], sp65[66], op32[33], op33[34], path[512];
    memset(sp64, 'p', 64);
    sp64[64] = '\0';
    memset(sp65, 'p', 65);
    sp65[65] = '\0';
    memset(op32, 'o', 32);
    op32[32] = '\0';
    memset(op33, 'o', 33);
    op33[33] = '\0';
    snprintf(path, sizeof path, "/std/%s/924542610003/balance", sp64);
    routed("GET", path, "/std/{serviceProvider}/{subscriberId}/balance");
    snprintf(path, sizeof path, "/std/%s/924542610003/balance", sp65);
    not_found("GET", path);
    snprintf(path, sizeof path, "/mgmt/%s/consents", op32);
    routed("GET", path, "/mgmt/{operator}/consents");
    snprintf(path, sizeof path, "/mgmt/%s/consents", op33);
    not_found("GET", path);
    not_found("GET", "/std/sp1//924542610003/balance");
    not_found("GET", "/mgmt//consents");
    not_found("POST", "//tp/registerCpid");
    not_found("GET", "/std/sp1/tp/1/2/balance"); /* five segments */
    /* a catch-all still names the tenant: "?" (no tenant) when the
     * segment is empty or too long, so a binding is never skipped */
    auth_need n;
    auth_route_need("GET", "/mgmt//purchases", &n);
    ck_assert_str_eq(n.op, "?");
    snprintf(path, sizeof path, "/mgmt/%s/purchases", op33);
    auth_route_need("GET", path, &n);
    ck_assert_str_eq(n.op, "?");
    ck_assert_str_eq(n.scope, "millom.mgmt.read");
    auth_route_need("GET", "/notify//x", &n);
    ck_assert_str_eq(n.scope, "cco.dd.notify.?.single");
}
END_TEST

START_TEST(trailing_slashes_as_before) {
    /* the standard API and the callbacks take one trailing slash */
    routed("GET", "/std/sp1/tp/924542610003/balance/",
           "/std/{serviceProvider}/{operator}/{subscriberId}/balance");
    routed("GET", "/std/sp1/924542610003/balance/",
           "/std/{serviceProvider}/{subscriberId}/balance");
    not_found("GET", "/std/sp1/924542610003/balance//");
    routed("POST", "/callback/v1/tp/", "/callback/v1/{operator}");
    routed("POST", "/activationCallback/tp/", "/activationCallback/{operator}");
    not_found("POST", "/callback/v1/tp//");
    /* nothing else does */
    not_found("GET", "/rnf/sp1/tp/abc,41001/offers/");
    not_found("GET", "/mgmt/tp/consents/");
    not_found("GET", "/mgmt/tp/settlements/");
    not_found("GET", "/mgmt/tp/purchases/");
    not_found("POST", "/notify/tp/v1/single/");
    not_found("POST", "/sp1/tp/registerCpid/");
    not_found("GET", "/cpid/");
    not_found("POST", "/oauth/v1/token/");
}
END_TEST

/* libmicrohttpd percent-decodes the path (http_path) before routing; the
 * router copies parameters as they are, never decoding twice. */
START_TEST(percent_encoding_as_before) {
    edge_match m = find("GET", "/std/sp1/abc%2C41001/balance");
    ck_assert_int_eq(m.status, 0);
    ck_assert_str_eq(m.params.subscriber, "abc%2C41001");
    m = find("GET", "/rnf/sp1/tp/a+b=c,41001/ping");
    ck_assert_int_eq(m.status, 0);
    ck_assert_str_eq(m.params.cpid, "a+b=c,41001");
    /* a decoded '/' (%2F) is a separator, as it was */
    not_found("GET", "/std/sp1/a/b/c/balance");
    /* literals compare exactly: no case folding, no decoding */
    not_found("GET", "/std/sp1/tp/924542610003/Balance");
    not_found("GET", "/std/sp1/tp/924542610003/bal%61nce");
    not_found("POST", "/OAUTH/v1/token");
}
END_TEST

START_TEST(unknown_path_404_known_path_405) {
    not_allowed("DELETE", "/std/sp1/tp/924542610003/balance", "GET");
    not_allowed("GET", "/std/sp1/tp/924542610003/purchasePlan", "POST");
    not_allowed("GET", "/oauth/v1/token", "POST");
    not_allowed("PUT", "/rnf/sp1/tp/abc,41001/purchasePlan", "GET, POST");
    not_allowed("POST", "/rnf/sp1/tp/abc,41001/shop", "GET");
    not_allowed("POST", "/healthz", "GET");
    not_allowed("POST", "/cpid", "GET");
    not_allowed("GET", "/sp1/tp/registerCpid", "POST");
    not_allowed("POST", "/mgmt/tp/purchases", "GET");
    not_allowed("GET", "/notify/tp/v1/single", "POST");
    edge_match m = find("GET", "/callback/v1/tp");
    ck_assert_int_eq(m.status, 405);
    ck_assert(m.route->flags & EDGE_ROUTE_OPERATOR_ERRORS); /* {errorType, message} */
    /* a 405 needs what its path needs */
    auth_need n;
    auth_route_need("DELETE", "/std/sp1/tp/924542610003/balance", &n);
    ck_assert_int_eq(n.kind, AUTH_TOKEN);
    ck_assert_str_eq(n.scope, "cco.dd.data-plan.gen.inquire");
    ck_assert_str_eq(n.sp, "sp1");
    /* a provider's purchase status: either scope will do (auth_scope_granted) */
    auth_route_need("GET", "/std/sp1/tp/924542610003/purchasePlan/tx-0000000001", &n);
    ck_assert_str_eq(n.scope, "cco.dd.data-plan.gen.activate cco.dd.data-plan.gen.inquire");
    ck_assert_str_eq(n.sp, "sp1");
    m = find("GET", "/std/sp1/924542610003/purchasePlan/tx-0000000001");
    ck_assert_int_eq(m.status, 0);
    ck_assert_str_eq(m.params.transid, "tx-0000000001");
    not_allowed("POST", "/std/sp1/tp/924542610003/purchasePlan/tx-0000000001", "GET");

    not_found("GET", "/");
    not_found("GET", "/nothing");
    not_found("GET", "/std/sp1/tp/924542610003/nothing");
    not_found("GET", "/std/sp1/tp/924542610003/register"); /* register has no operator form */
    not_found("GET", "/rnf/sp1/tp/abc,41001/nothing");
    not_found("GET", "relative/path");
    m = find("POST", "/callback/v1/tp/x");
    ck_assert_int_eq(m.status, 404);
    ck_assert(m.route->flags & EDGE_ROUTE_OPERATOR_ERRORS);
    /* a path in an area never falls through to another area's route */
    not_found("POST", "/mgmt/tp/registerCpid");
    not_found("POST", "/notify/tp/registerCpid");
    ck_assert_ptr_eq(find("GET", "/rnf/x").route->headers, edge_rnf_headers);
}
END_TEST

/* The JSON check follows the rows: every POST, PUT, PATCH but the form
 * rows (the token endpoint, the signed links). */
START_TEST(json_bodies_by_row) {
    ck_assert(edge_body_must_be_json("POST", "/std/sp/123/purchasePlan"));
    ck_assert(edge_body_must_be_json("PATCH", "/nothing"));
    ck_assert(edge_body_must_be_json("POST", "/healthz")); /* then 405 */
    ck_assert(!edge_body_must_be_json("POST", "/oauth/v1/token"));
    ck_assert(!edge_body_must_be_json("POST", "/rnf/sp/tp/cpid/purchasePlan"));
    ck_assert(!edge_body_must_be_json("POST", "/rnf/anything"));
    ck_assert(!edge_body_must_be_json("GET", "/std/sp/123/balance"));
    ck_assert(!edge_body_must_be_json("DELETE", "/std/sp/123/balance"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("api-edge routes");
    TCase *tc = tcase_create("routes");
    tcase_add_test(tc, every_route_not_public_has_a_scope);
    tcase_add_test(tc, every_row_is_reachable);
    tcase_add_test(tc, parameters_are_extracted_typed);
    tcase_add_test(tc, parameter_sizes);
    tcase_add_test(tc, trailing_slashes_as_before);
    tcase_add_test(tc, percent_encoding_as_before);
    tcase_add_test(tc, unknown_path_404_known_path_405);
    tcase_add_test(tc, json_bodies_by_row);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
