/* The tenants file's "maxInFlight" (shared/contracts/config.c) and
 * purchase-executor's operator slots (operator_slots.c): the value is
 * read, defaults to 32, a bad one is refused; threads calling one operator
 * never hold more slots than its maxInFlight, and do reach it. Works with
 * CK_FORK=no; waits are bounded polls. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "services/purchase-executor/operator_slots.h"
#include "shared/contracts/config.h"

static char path[64];

static tenants *load(const char *ops, char *err, size_t errlen) {
    snprintf(path, sizeof path, "/tmp/millom-slots-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\"operators\":[%s],\"serviceProviders\":[]}", ops);
    fclose(f);
    tenants *t = tenants_load(path, err, errlen);
    unlink(path);
    return t;
}

#define OP(id, extra)                                                                      \
    "{\"id\":\"" id "\",\"mccmnc\":\"41006\",\"countryCode\":\"92\",\"currency\":\"PKR\"," \
    "\"backendUrl\":\"http://127.0.0.1:1\",\"languages\":[\"en\"]" extra "}"

START_TEST(max_in_flight_is_read_with_a_default) {
    char err[256] = "";
    tenants *t = load(OP("a", ",\"maxInFlight\":3") "," OP("b", ""), err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    ck_assert_int_eq(tenants_operator(t, "a")->max_in_flight, 3);
    ck_assert_int_eq(tenants_operator(t, "b")->max_in_flight, 32);
    tenants_free(t);
    ck_assert_ptr_null(load(OP("a", ",\"maxInFlight\":0"), err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "maxInFlight"));
    ck_assert_ptr_null(load(OP("a", ",\"maxInFlight\":\"8\""), err, sizeof err));
    ck_assert_ptr_null(load(OP("a", ",\"maxInFlight\":2.5"), err, sizeof err));
}
END_TEST

static operator_slots *slots;
static const tenant_operator *op_a;
static atomic_int holding, most, rounds_left;

static void *caller(void *arg) {
    (void)arg;
    while (atomic_fetch_sub(&rounds_left, 1) > 0) {
        operator_slot_take(slots, op_a);
        int now = atomic_fetch_add(&holding, 1) + 1;
        int m = atomic_load(&most);
        while (now > m && !atomic_compare_exchange_weak(&most, &m, now)) {
        }
        struct timespec ts = {0, 2000000L}; /* hold it a moment: others queue up */
        nanosleep(&ts, NULL);
        atomic_fetch_sub(&holding, 1);
        operator_slot_give(slots, op_a);
    }
    return NULL;
}

START_TEST(callers_never_hold_more_than_max_in_flight) {
    char err[256] = "";
    tenants *t = load(OP("a", ",\"maxInFlight\":2"), err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    op_a = tenants_operator(t, "a");
    slots = operator_slots_new(t);
    ck_assert_ptr_nonnull(slots);
    atomic_store(&holding, 0);
    atomic_store(&most, 0);
    atomic_store(&rounds_left, 400);
    pthread_t th[8];
    for (int i = 0; i < 8; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, caller, NULL), 0);
    for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
    ck_assert_int_le(atomic_load(&most), 2);
    ck_assert_int_eq(atomic_load(&most), 2); /* eight callers did overlap */
    /* An operator not in the tenants (or no slots) is not limited. */
    tenant_operator other = {.id = "x", .max_in_flight = 1};
    operator_slot_take(slots, &other);
    operator_slot_take(slots, &other);
    operator_slot_give(slots, &other);
    operator_slot_give(slots, &other);
    operator_slot_take(NULL, op_a);
    operator_slot_give(NULL, op_a);
    operator_slots_free(slots);
    tenants_free(t);
}
END_TEST

int main(void) {
    Suite *s = suite_create("purchase_executor_slots");
    TCase *tc = tcase_create("slots");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, max_in_flight_is_read_with_a_default);
    tcase_add_test(tc, callers_never_hold_more_than_max_in_flight);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
