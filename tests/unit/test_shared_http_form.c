/* Client credentials as HTTP carries them (shared/plumbing/http_form.c):
 * HTTP Basic and form-urlencoded fields, as api-edge's and sp-sandbox's
 * token endpoints and api-edge's shop form read them. Works with
 * CK_FORK=no. */
#include <check.h>
#include <string.h>

#include "shared/plumbing/http_form.h"

START_TEST(basic_credentials) {
    char id[129], secret[256];
    /* "sp-demo:sp-demo-secret" */
    ck_assert_int_eq(http_basic_parse("Basic c3AtZGVtbzpzcC1kZW1vLXNlY3JldA==", id, sizeof id,
                                      secret, sizeof secret),
                     0);
    ck_assert_str_eq(id, "sp-demo");
    ck_assert_str_eq(secret, "sp-demo-secret");
    /* "a%3Ab:x:y" → id "a:b", secret "x:y" (parts are form-urlencoded) */
    ck_assert_int_eq(http_basic_parse("basic YSUzQWI6eDp5", id, sizeof id, secret, sizeof secret),
                     0);
    ck_assert_str_eq(id, "a:b");
    ck_assert_str_eq(secret, "x:y");
    /* "id:" → empty secret is still parsed (and fails the check later) */
    ck_assert_int_eq(http_basic_parse("Basic aWQ6", id, sizeof id, secret, sizeof secret), 0);
    ck_assert_str_eq(secret, "");
    ck_assert_int_eq(http_basic_parse("Basic bm9jb2xvbg==", id, sizeof id, secret, sizeof secret),
                     -1); /* "nocolon" */
    ck_assert_int_eq(http_basic_parse("Basic Ond4", id, sizeof id, secret, sizeof secret),
                     -1); /* ":wx" no id */
    ck_assert_int_eq(http_basic_parse("Basic !!!!", id, sizeof id, secret, sizeof secret), -1);
    ck_assert_int_eq(http_basic_parse("Basic abc", id, sizeof id, secret, sizeof secret), -1);
    ck_assert_int_eq(http_basic_parse("Basic ", id, sizeof id, secret, sizeof secret), -1);
    ck_assert_int_eq(http_basic_parse("Bearer abcd", id, sizeof id, secret, sizeof secret), -1);
    ck_assert_int_eq(http_basic_parse(NULL, id, sizeof id, secret, sizeof secret), -1);
}
END_TEST

static int form(const char *body, const char *name, char *out, size_t outlen) {
    return http_form_get(body, strlen(body), name, out, outlen);
}

START_TEST(form_parameters) {
    char v[64];
    const char *b = "grant_type=client_credentials&scope=a+b%20c&client_secret=x%26y%3Dz&e=";
    ck_assert_int_eq(form(b, "grant_type", v, sizeof v), 1);
    ck_assert_str_eq(v, "client_credentials");
    ck_assert_int_eq(form(b, "scope", v, sizeof v), 1);
    ck_assert_str_eq(v, "a b c");
    ck_assert_int_eq(form(b, "client_secret", v, sizeof v), 1);
    ck_assert_str_eq(v, "x&y=z");
    ck_assert_int_eq(form(b, "e", v, sizeof v), 1);
    ck_assert_str_eq(v, "");
    ck_assert_int_eq(form(b, "client_id", v, sizeof v), 0);
    ck_assert_int_eq(form("a=1&&b=%2B2&", "b", v, sizeof v), 1);
    ck_assert_str_eq(v, "+2");
    ck_assert_int_eq(form("a=1&a=2", "a", v, sizeof v), -1); /* repeated */
    ck_assert_int_eq(form("a=x%00y", "a", v, sizeof v), -1); /* NUL */
    ck_assert_int_eq(form("a=0123456789", "a", v, 5), -1);   /* too long */
    ck_assert_int_eq(form("", "a", v, sizeof v), 0);
    ck_assert_int_eq(form("grant%5Ftype=x", "grant_type", v, sizeof v), 1); /* encoded name */
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared http_form");
    TCase *tc = tcase_create("http_form");
    tcase_add_test(tc, basic_credentials);
    tcase_add_test(tc, form_parameters);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
