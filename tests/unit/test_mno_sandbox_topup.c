/* mno-sandbox's top-up extension store (services/mno-sandbox/store_topup.c):
 * messages recorded once per reference, credits once per transId, refused
 * for unknown and barred subscribers, and both wiped by a reseed. Each
 * test opens the store in its own temporary directory. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/mno-sandbox/mno_sandbox.h"

static char dir[256];
static mno_store *store;

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/test_mno_sandbox_topup.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("MILLOM_DATA_DIR", dir, 1);
    char err[256] = "";
    store = mno_store_open(2, err, sizeof err);
    ck_assert_msg(store != NULL, "mno_store_open: %s", err);
}

static void teardown(void) {
    mno_store_close(store);
    store = NULL;
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char path[320];
        snprintf(path, sizeof path, "%s/mno-sandbox.db%s", dir, suffix[i]);
        unlink(path);
    }
    rmdir(dir);
}

static json_int_t count_to(const char *msisdn) {
    json_t *j = mno_messages_json(store, msisdn);
    ck_assert_ptr_nonnull(j);
    json_int_t n = json_integer_value(json_object_get(j, "count"));
    json_decref(j);
    return n;
}

START_TEST(messages_once_per_reference) {
    int64_t a = 0, b = 0, c = 0;
    ck_assert_int_eq(mno_message_record(store, "6582736491", "SMS", "hello", "tu-1", 1000, &a), 0);
    ck_assert_int_eq(mno_message_record(store, "6582736491", "SMS", "hello", "tu-1", 2000, &b), 0);
    ck_assert_int_eq(a, b);
    ck_assert_int_eq(mno_message_record(store, "6582736491", "USSD", "hi", NULL, 3000, &c), 0);
    ck_assert_int_ne(a, c);
    ck_assert_int_eq(count_to("6582736491"), 2);
    ck_assert_int_eq(count_to("924542610000"), 0);
    json_t *all = mno_messages_json(store, NULL);
    json_t *first = json_array_get(json_object_get(all, "messages"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(first, "to")), "6582736491");
    ck_assert_str_eq(json_string_value(json_object_get(first, "reference")), "tu-1");
    ck_assert_str_eq(json_string_value(json_object_get(first, "text")), "hello");
    json_decref(all);
    ck_assert_int_ge(mno_store_reseed(store), 0);
    ck_assert_int_eq(count_to(NULL), 0);
}
END_TEST

/* The credit's status; its balance value (a JSON number) into *balance. */
static int credit(const char *msisdn, const char *trans_id, int64_t amount, double *balance,
                  char *error_type) {
    mno_reply r = mno_credit(store, msisdn, trans_id, amount, 1000);
    ck_assert_ptr_nonnull(r.body);
    if (balance)
        *balance = json_number_value(json_object_get(json_object_get(r.body, "balance"), "value"));
    if (error_type)
        snprintf(error_type, 32, "%s",
                 json_string_value(json_object_get(r.body, "errorType"))
                     ? json_string_value(json_object_get(r.body, "errorType"))
                     : "");
    json_decref(r.body);
    return r.status;
}

START_TEST(credits_once_per_trans_id) {
    double balance = 0;
    char type[32];
    /* 924542610000 has 0.00 */
    ck_assert_int_eq(credit("924542610000", "tu-a", 25000, &balance, NULL), 200);
    ck_assert(balance == 250.0);
    ck_assert_int_eq(credit("+924542610000", "tu-a", 25000, &balance, NULL), 200);
    ck_assert(balance == 250.0);
    ck_assert_int_eq(credit("924542610000", "tu-a", 10000, NULL, type), 409);
    ck_assert_str_eq(type, "CONFLICT");
    ck_assert_int_eq(credit("924542610006", "tu-a", 25000, NULL, type), 409);
    ck_assert_int_eq(credit("924542610000", "tu-b", 10000, &balance, NULL), 200);
    ck_assert(balance == 350.0);
    ck_assert_int_eq(credit("924542619999", "tu-c", 100, NULL, type), 404);
    ck_assert_str_eq(type, "UNKNOWN_SUBSCRIBER_ID");
    ck_assert_int_eq(credit("924542610005", "tu-d", 100, NULL, type), 403);
    ck_assert_str_eq(type, "USER_BARRED");
    /* a reseed restores the seeded balance and forgets the credits */
    ck_assert_int_ge(mno_store_reseed(store), 0);
    ck_assert_int_eq(credit("924542610000", "tu-a", 100, &balance, NULL), 200);
    ck_assert(balance == 1.0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("mno-sandbox topup");
    TCase *tc = tcase_create("store");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, messages_once_per_reference);
    tcase_add_test(tc, credits_once_per_trans_id);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
