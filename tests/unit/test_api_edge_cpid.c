/* api-edge and CPIDs: validation of key_type=CPID with an injected clock,
 * the client IP ranges of header enrichment, the register body. */
#include "services/api-edge/edge.h"
#include "services/api-edge/request_std.h"
#include "shared/plumbing/errors.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#define NOW 1800000000000LL
#define SP "testserviceprovider"

static tenants *t;
static cpid_config cfg;

static void setup(void) {
    char err[256];
    t = tenants_load("config/tenants.sandbox.json", err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    ck_assert_int_eq(cpid_config_init(&cfg, "unit test key", 3600), 0);
}

static void teardown(void) { tenants_free(t); }

/* Validates "/std/{sp}[/{op}]/{cpid}/{action}" with key_type=CPID at now
 * (the path as api-edge's route table hands it over). */
static const char *validate(const char *sp, const char *op, const char *cpid, const char *action,
                            int64_t now, std_request *r) {
    static const struct {
        const char *name;
        std_action action;
    } names[] = {{"accountInfo", STD_ACCOUNT_INFO},
                 {"balance", STD_BALANCE},
                 {"upsellOffer", STD_UPSELL_OFFER},
                 {"purchasePlan", STD_PURCHASE_PLAN},
                 {"register", STD_REGISTER}};
    std_path p;
    memset(&p, 0, sizeof p);
    size_t i = 0;
    while (i < sizeof names / sizeof names[0] && strcmp(names[i].name, action) != 0) i++;
    ck_assert_uint_lt(i, sizeof names / sizeof names[0]);
    p.action = names[i].action;
    snprintf(p.provider, sizeof p.provider, "%s", sp);
    snprintf(p.op, sizeof p.op, "%s", op ? op : "");
    snprintf(p.subscriber, sizeof p.subscriber, "%s", cpid);
    std_inputs in = {.key_type = "CPID"};
    char msg[256] = "";
    const char *cause = std_validate(t, &cfg, now, &p, &in, r, msg, sizeof msg);
    if (cause) ck_assert_msg(msg[0], "no message for %s", cause);
    return cause;
}

START_TEST(cpids_validate_to_the_msisdn) {
    char a[CPID_MAX_LEN], b[CPID_MAX_LEN];
    ck_assert_int_eq(cpid_issue(&cfg, "924542610003", SP, "41006", NOW, a, sizeof a), 0);
    ck_assert_int_eq(cpid_issue(&cfg, "924542610003", SP, "41006", NOW, b, sizeof b), 0);
    ck_assert_str_ne(a, b);
    const char *actions[] = {"accountInfo", "balance", "upsellOffer", "purchasePlan", "register"};
    for (size_t i = 0; i < 5; i++) {
        std_request r;
        ck_assert_ptr_null(validate(SP, NULL, a, actions[i], NOW + 1000, &r));
        ck_assert_str_eq(r.subscriber, "924542610003");
        ck_assert_int_eq(r.key_type, MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN);
        ck_assert(r.from_cpid);
        ck_assert_str_eq(r.op->id, "tp");
        ck_assert_ptr_null(validate(SP, NULL, b, actions[i], NOW + 1000, &r));
        ck_assert_str_eq(r.subscriber, "924542610003");
    }
    std_request r;
    ck_assert_ptr_null(validate(SP, "tp", a, "balance", NOW, &r));
    ck_assert_str_eq(r.subscriber, "924542610003");
}
END_TEST

START_TEST(expired_tampered_foreign_cpids_are_refused) {
    char a[CPID_MAX_LEN], t2[CPID_MAX_LEN];
    ck_assert_int_eq(cpid_issue(&cfg, "924542610003", SP, "41006", NOW, a, sizeof a), 0);
    std_request r;
    /* valid until NOW + 3600 s, then 410 */
    ck_assert_ptr_null(validate(SP, NULL, a, "balance", NOW + 3600 * 1000 - 1, &r));
    ck_assert_str_eq(validate(SP, NULL, a, "balance", NOW + 3600 * 1000, &r), CAUSE_BAD_CPID);
    /* another provider's CPID: 403, and nothing of the subscriber */
    ck_assert_str_eq(validate("otherprovider", NULL, a, "balance", NOW, &r), CAUSE_NOT_ALLOWED);
    ck_assert_str_eq(r.subscriber, "");
    ck_assert_str_eq(validate("otherprovider", "tp", a, "purchasePlan", NOW, &r),
                     CAUSE_NOT_ALLOWED);
    /* tampered */
    strcpy(t2, a);
    t2[10] = t2[10] == 'x' ? 'y' : 'x';
    ck_assert_str_eq(validate(SP, NULL, t2, "balance", NOW, &r), CAUSE_BAD_CPID);
    ck_assert_str_eq(r.subscriber, "");
    /* signed under another key */
    cpid_config other;
    cpid_config_init(&other, "another deployment", 3600);
    ck_assert_int_eq(cpid_issue(&other, "924542610003", SP, "41006", NOW, t2, sizeof t2), 0);
    ck_assert_str_eq(validate(SP, NULL, t2, "balance", NOW, &r), CAUSE_BAD_CPID);
    /* garbage and an unknown MCCMNC */
    ck_assert_str_eq(validate(SP, NULL, "abc,41006", "balance", NOW, &r), CAUSE_BAD_CPID);
    ck_assert_str_eq(validate(SP, NULL, "abc,99999", "balance", NOW, &r), CAUSE_BAD_CPID);
    /* a CPID of an operator that is not the path's */
    ck_assert_int_eq(cpid_issue(&cfg, "924542610003", SP, "41001", NOW, t2, sizeof t2), 0);
    ck_assert_str_eq(validate(SP, "tp", t2, "balance", NOW, &r), CAUSE_BAD_CPID);
}
END_TEST

START_TEST(cidr_matching) {
    ck_assert(edge_ip_in_cidr("127.0.0.1", "127.0.0.0/8"));
    ck_assert(edge_ip_in_cidr("127.255.1.2", "127.0.0.0/8"));
    ck_assert(!edge_ip_in_cidr("128.0.0.1", "127.0.0.0/8"));
    ck_assert(edge_ip_in_cidr("10.20.30.40", "10.20.0.0/16"));
    ck_assert(!edge_ip_in_cidr("10.21.30.40", "10.20.0.0/16"));
    ck_assert(edge_ip_in_cidr("192.168.1.129", "192.168.1.128/25"));
    ck_assert(!edge_ip_in_cidr("192.168.1.127", "192.168.1.128/25"));
    ck_assert(edge_ip_in_cidr("1.2.3.4", "0.0.0.0/0"));
    ck_assert(edge_ip_in_cidr("1.2.3.4", "1.2.3.4"));
    ck_assert(!edge_ip_in_cidr("1.2.3.5", "1.2.3.4"));
    ck_assert(edge_ip_in_cidr("::ffff:127.0.0.1", "127.0.0.0/8"));
    ck_assert(edge_ip_in_cidr("::1", "::1/128"));
    ck_assert(!edge_ip_in_cidr("::2", "::1/128"));
    ck_assert(edge_ip_in_cidr("2001:db8::7", "2001:db8::/32"));
    ck_assert(!edge_ip_in_cidr("2001:db9::7", "2001:db8::/32"));
    ck_assert(!edge_ip_in_cidr("::1", "127.0.0.0/8"));
    ck_assert(!edge_ip_in_cidr("127.0.0.1", "127.0.0.0/33"));
    ck_assert(!edge_ip_in_cidr("127.0.0.1", "127.0.0.0/"));
    ck_assert(!edge_ip_in_cidr("127.0.0.1", "127.0.0.0/x"));
    ck_assert(!edge_ip_in_cidr("127.0.0.1", "garbage"));
    ck_assert(!edge_ip_in_cidr("garbage", "0.0.0.0/0"));
    ck_assert(!edge_ip_in_cidr(NULL, "0.0.0.0/0"));
    ck_assert(!edge_ip_in_cidr("127.0.0.1", NULL));
    /* the sandbox tenants trust loopback for tp, nothing else */
    const tenant_operator *op = edge_cpid_operator_for_ip(t, "127.0.0.1");
    ck_assert_ptr_nonnull(op);
    ck_assert_str_eq(op->id, "tp");
    ck_assert_str_eq(edge_msisdn_header(op), "X-MSISDN");
    ck_assert_ptr_null(edge_cpid_operator_for_ip(t, "10.0.0.1"));
    ck_assert_ptr_null(edge_cpid_operator_for_ip(t, "::1"));
}
END_TEST

/* The handler of the route table's row for method and path, NULL for a
 * 404 or 405. */
static edge_handler handler_of(const char *method, const char *path) {
    edge_match m;
    edge_route_find(method, path, &m);
    return m.status == 0 ? m.route->handler : NULL;
}

START_TEST(route_matching) {
    ck_assert(handler_of("GET", "/cpid") == routes_cpid_get);
    ck_assert(handler_of("POST", "/testserviceprovider/tp/registerCpid") == routes_cpid_register);
    ck_assert(handler_of("GET", "/cpid/x") == NULL);
    ck_assert(handler_of("POST", "/testserviceprovider/tp/registerCpid/x") == NULL);
    ck_assert(handler_of("POST", "/testserviceprovider/registerCpid") == NULL);
    ck_assert(handler_of("POST", "//tp/registerCpid") == NULL);
    ck_assert(handler_of("GET", "/mgmt/tp/consents") == routes_consents);
    ck_assert(handler_of("GET", "/mgmt/tp/consents/x") == NULL);
    ck_assert(handler_of("GET", "/mgmt/tp/purchases") != routes_consents);
    ck_assert(handler_of("GET", "/mgmt//consents") == NULL);
}
END_TEST

static void body_bad(const char *body, const char *field) {
    register_body b;
    char msg[256] = "";
    ck_assert_msg(register_body_parse(body, strlen(body), &b, msg, sizeof msg) != 0, "accepted: %s",
                  body);
    ck_assert_msg(strstr(msg, field) != NULL, "message '%s' does not name '%s'", msg, field);
}

START_TEST(register_bodies) {
    register_body b;
    char msg[256];
    const char *ok = "{\"transactionId\":\"xxx-yyy-zzz\",\"types\":[\"out-of-data\","
                     "\"low-data\",\"out-of-data\"],\"extra\":1}";
    ck_assert_int_eq(register_body_parse(ok, strlen(ok), &b, msg, sizeof msg), 0);
    ck_assert_str_eq(b.transaction_id, "xxx-yyy-zzz");
    ck_assert_int_eq(b.n_types, 2);
    ck_assert_str_eq(b.types[0], "out-of-data");
    ck_assert_str_eq(b.types[1], "low-data");
    const char *revoke = "{\"transactionId\":\"t1\",\"types\":[]}";
    ck_assert_int_eq(register_body_parse(revoke, strlen(revoke), &b, msg, sizeof msg), 0);
    ck_assert_int_eq(b.n_types, 0);
    const char *all = "{\"transactionId\":\"t\",\"types\":[\"low-data\",\"out-of-data\","
                      "\"pay-as-you-go\",\"pack-near-consumption\",\"pack-consumed\","
                      "\"pack-expired\",\"pack-near-expiry\",\"low-monetary-balance\","
                      "\"monetary-reload\"]}";
    ck_assert_int_eq(register_body_parse(all, strlen(all), &b, msg, sizeof msg), 0);
    ck_assert_int_eq(b.n_types, 9);
    body_bad("{\"transactionId\":\"t\",\"types\":[\"out-of-data\",\"spam\"]}", "types[1]");
    body_bad("{\"transactionId\":\"t\",\"types\":[\"OUT-OF-DATA\"]}", "types[0]");
    body_bad("{\"transactionId\":\"t\",\"types\":[7]}", "types[0]");
    body_bad("{\"transactionId\":\"t\",\"types\":\"low-data\"}", "types");
    body_bad("{\"transactionId\":\"t\"}", "types");
    body_bad("{\"types\":[]}", "transactionId");
    body_bad("{\"transactionId\":\"\",\"types\":[]}", "transactionId");
    body_bad("{\"transactionId\":5,\"types\":[]}", "transactionId");
    body_bad("[]", "object");
    body_bad("nope", "JSON");
    body_bad("", "JSON");
}
END_TEST

int main(void) {
    Suite *s = suite_create("api-edge cpid");
    TCase *tc = tcase_create("cpid");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, cpids_validate_to_the_msisdn);
    tcase_add_test(tc, expired_tampered_foreign_cpids_are_refused);
    tcase_add_test(tc, cidr_matching);
    tcase_add_test(tc, route_matching);
    tcase_add_test(tc, register_bodies);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
