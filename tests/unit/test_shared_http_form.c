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

/* The token request of the client-credentials grant, as both token
 * endpoints read it. */
static const char *token_request(const char *ct, const char *authz, const char *body,
                                 client_credentials *cc, int *status) {
    const char *description = NULL;
    const char *error =
        client_credentials_read(ct, authz, body, strlen(body), cc, status, &description);
    if (error) ck_assert_ptr_nonnull(description);
    return error;
}

#define FORM "application/x-www-form-urlencoded"

START_TEST(client_credentials_requests) {
    client_credentials cc;
    int status = 0;
    /* Basic ("sp-demo:sp-demo-secret") with a scope */
    ck_assert_ptr_null(token_request(FORM "; charset=utf-8",
                                     "Basic c3AtZGVtbzpzcC1kZW1vLXNlY3JldA==",
                                     "grant_type=client_credentials&scope=a+b", &cc, &status));
    ck_assert_str_eq(cc.id, "sp-demo");
    ck_assert_str_eq(cc.secret, "sp-demo-secret");
    ck_assert_int_eq(cc.has_scope, 1);
    ck_assert_str_eq(cc.scope, "a b");
    /* the form's client_id and client_secret, no scope */
    ck_assert_ptr_null(token_request(
        FORM, NULL, "grant_type=client_credentials&client_id=x&client_secret=y%26z", &cc, &status));
    ck_assert_str_eq(cc.id, "x");
    ck_assert_str_eq(cc.secret, "y&z");
    ck_assert_int_eq(cc.has_scope, 0);
    /* Basic with the same client_id in the form is one way still */
    ck_assert_ptr_null(token_request(FORM, "Basic c3AtZGVtbzpzcC1kZW1vLXNlY3JldA==",
                                     "grant_type=client_credentials&client_id=sp-demo", &cc,
                                     &status));
    /* refusals: the RFC's error codes and statuses; no secret kept */
    ck_assert_str_eq(token_request("application/json", NULL, "{}", &cc, &status),
                     "invalid_request");
    ck_assert_int_eq(status, 400);
    ck_assert_str_eq(token_request(NULL, NULL, "grant_type=client_credentials", &cc, &status),
                     "invalid_request");
    ck_assert_str_eq(token_request(FORM, NULL, "client_id=x&client_secret=y", &cc, &status),
                     "invalid_request");
    ck_assert_str_eq(
        token_request(FORM, NULL, "grant_type=password&client_id=x&client_secret=y", &cc, &status),
        "unsupported_grant_type");
    ck_assert_int_eq(status, 400);
    ck_assert_str_eq(
        token_request(FORM, NULL, "grant_type=client_credentials&grant_type=x", &cc, &status),
        "invalid_request");
    ck_assert_str_eq(
        token_request(FORM, NULL, "grant_type=client_credentials&client_id=x", &cc, &status),
        "invalid_client");
    ck_assert_int_eq(status, 401);
    ck_assert_str_eq(
        token_request(FORM, "Basic !!!!", "grant_type=client_credentials", &cc, &status),
        "invalid_client");
    ck_assert_int_eq(status, 401);
    ck_assert_str_eq(token_request(FORM, "Basic c3AtZGVtbzpzcC1kZW1vLXNlY3JldA==",
                                   "grant_type=client_credentials&client_secret=y", &cc, &status),
                     "invalid_request");
    ck_assert_str_eq(cc.secret, "");
    ck_assert_str_eq(token_request(FORM, "Basic c3AtZGVtbzpzcC1kZW1vLXNlY3JldA==",
                                   "grant_type=client_credentials&client_id=other", &cc, &status),
                     "invalid_request");
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared http_form");
    TCase *tc = tcase_create("http_form");
    tcase_add_test(tc, basic_credentials);
    tcase_add_test(tc, form_parameters);
    tcase_add_test(tc, client_credentials_requests);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
