/* The tenants file's webhook fields (shared/contracts/config.c): a
 * provider's "webhookAuth" (OAuth 2.0 client credentials for Millom's
 * webhooks) and "webhookSecrets" (the environment variables holding its
 * signing secrets) are read, and every malformed one stops the load with
 * a message naming the provider and the field. Works with CK_FORK=no. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/contracts/config.h"

static char path[64];

/* The sandbox tenants with `fields` (a JSON object's members) merged into
 * testserviceprovider's entry; the load's result, its message in err. */
static tenants *load_with(const char *fields, char *err, size_t errlen) {
    json_t *t = json_load_file("config/tenants.sandbox.json", 0, NULL);
    ck_assert_ptr_nonnull(t);
    char obj[2048];
    snprintf(obj, sizeof obj, "{%s}", fields);
    json_t *add = json_loads(obj, 0, NULL);
    ck_assert_msg(add != NULL, "test JSON: %s", obj);
    json_object_update(json_array_get(json_object_get(t, "serviceProviders"), 0), add);
    json_decref(add);
    snprintf(path, sizeof path, "/tmp/test_shared_config.XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(json_dump_file(t, path, 0), 0);
    json_decref(t);
    err[0] = '\0';
    tenants *out = tenants_load(path, err, errlen);
    unlink(path);
    return out;
}

START_TEST(sandbox_providers_have_no_webhook_auth) {
    char err[256];
    tenants *t = tenants_load("config/tenants.sandbox.json", err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    const tenant_provider *p = tenants_provider(t, "testserviceprovider");
    ck_assert_ptr_null(p->webhook_auth.token_url);
    ck_assert_ptr_null(p->webhook_secret_envs[0]);
    tenants_free(t);
}
END_TEST

START_TEST(webhook_fields_read) {
    char err[256];
    tenants *t = load_with("\"webhookAuth\": {\"tokenUrl\": \"https://sp.example/oauth/token\","
                           " \"clientId\": \"millom\", \"clientSecretEnv\": \"SP_CLIENT_SECRET\","
                           " \"scope\": \"notifications\"},"
                           " \"webhookSecrets\": [{\"env\": \"SP_WEBHOOK_SECRET\"},"
                           " {\"env\": \"SP_WEBHOOK_SECRET_NEXT\"}]",
                           err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    const tenant_provider *p = tenants_provider(t, "testserviceprovider");
    ck_assert_str_eq(p->webhook_auth.token_url, "https://sp.example/oauth/token");
    ck_assert_str_eq(p->webhook_auth.client_id, "millom");
    ck_assert_str_eq(p->webhook_auth.client_secret_env, "SP_CLIENT_SECRET");
    ck_assert_str_eq(p->webhook_auth.scope, "notifications");
    ck_assert_str_eq(p->webhook_secret_envs[0], "SP_WEBHOOK_SECRET");
    ck_assert_str_eq(p->webhook_secret_envs[1], "SP_WEBHOOK_SECRET_NEXT");
    ck_assert_ptr_null(p->webhook_secret_envs[2]);
    /* the other provider has neither */
    ck_assert_ptr_null(tenants_provider(t, "otherprovider")->webhook_auth.token_url);
    tenants_free(t);

    t = load_with("\"webhookAuth\": {\"tokenUrl\": \"http://127.0.0.1:1/t\", \"clientId\": \"c\","
                  " \"clientSecretEnv\": \"S\"}, \"webhookSecrets\": null",
                  err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    p = tenants_provider(t, "testserviceprovider");
    ck_assert_ptr_null(p->webhook_auth.scope);
    ck_assert_ptr_null(p->webhook_secret_envs[0]);
    tenants_free(t);
}
END_TEST

START_TEST(webhook_fields_refused) {
    static const struct {
        const char *fields, *message;
    } bad[] = {
        {"\"webhookAuth\": \"yes\"", "serviceProviders[0].webhookAuth must be an object"},
        {"\"webhookAuth\": {\"clientId\": \"c\", \"clientSecretEnv\": \"S\"}", "\"tokenUrl\""},
        {"\"webhookAuth\": {\"tokenUrl\": \"ftp://x\", \"clientId\": \"c\", \"clientSecretEnv\": "
         "\"S\"}",
         "tokenUrl must be an http:// or https:// URL"},
        {"\"webhookAuth\": {\"tokenUrl\": \"http://x\", \"clientId\": \"c\", \"clientSecret\": "
         "\"plain\"}",
         "the secret never goes in the file"},
        {"\"webhookAuth\": {\"tokenUrl\": \"http://x\", \"clientId\": \"c\", \"clientSecretEnv\": "
         "\"not a name\"}",
         "clientSecretEnv must name an environment variable"},
        {"\"webhookAuth\": {\"tokenUrl\": \"http://x\", \"clientId\": \"c\", \"clientSecretEnv\": "
         "\"S\", \"scopes\": \"a\"}",
         "unknown field \"scopes\""},
        {"\"webhookAuth\": {\"tokenUrl\": \"http://x\", \"clientId\": \"c\", \"clientSecretEnv\": "
         "\"S\", \"scope\": 3}",
         "scope must be a string"},
        {"\"webhookSecrets\": []", "webhookSecrets must be an array of 1 to 2"},
        {"\"webhookSecrets\": [{\"env\": \"A\"}, {\"env\": \"B\"}, {\"env\": \"C\"}]",
         "webhookSecrets must be an array of 1 to 2"},
        {"\"webhookSecrets\": {\"env\": \"A\"}", "webhookSecrets must be an array"},
        {"\"webhookSecrets\": [\"A\"]", "webhookSecrets[0] must be {\"env\": NAME}"},
        {"\"webhookSecrets\": [{\"env\": \"whsec_AAAA\"}]", "the secret never goes in the file"},
        {"\"webhookSecrets\": [{\"env\": \"A\", \"secret\": \"x\"}]", "unknown field \"secret\""},
        {"\"webhookSecrets\": [{\"env\": \"A\"}, {\"env\": \"A\"}]", "A is named twice"},
        {"\"purchaseCallbacks\": \"some\"", "purchaseCallbacks: must be \"processing\" or \"all\""},
        {"\"purchaseCallbacks\": true", "purchaseCallbacks: must be \"processing\" or \"all\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char err[256];
        tenants *t = load_with(bad[i].fields, err, sizeof err);
        ck_assert_msg(t == NULL, "accepted %s", bad[i].fields);
        ck_assert_msg(strstr(err, bad[i].message) != NULL, "%s: \"%s\" has no \"%s\"",
                      bad[i].fields, err, bad[i].message);
    }
}
END_TEST

/* "purchaseCallbacks": "processing" by default, "all" for every outcome. */
START_TEST(purchase_callbacks_read) {
    char err[256];
    tenants *t = load_with("\"purchaseCallbacks\": \"all\"", err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    ck_assert(tenants_provider(t, "testserviceprovider")->callbacks_for_answered);
    ck_assert(!tenants_provider(t, "otherprovider")->callbacks_for_answered);
    tenants_free(t);
    t = load_with("\"purchaseCallbacks\": \"processing\"", err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    ck_assert(!tenants_provider(t, "testserviceprovider")->callbacks_for_answered);
    tenants_free(t);
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared config");
    TCase *tc = tcase_create("tenants");
    tcase_add_test(tc, sandbox_providers_have_no_webhook_auth);
    tcase_add_test(tc, webhook_fields_read);
    tcase_add_test(tc, webhook_fields_refused);
    tcase_add_test(tc, purchase_callbacks_read);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
