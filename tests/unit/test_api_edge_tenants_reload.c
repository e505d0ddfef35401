/* api-edge's tenants versions (services/api-edge/tenants_reload.c):
 * edge_config_parse reads the tenants and their clients from the file's
 * bytes and refuses, naming the file and the reason, what the start-up
 * refuses; tenants_reload publishes a good file, tells an unchanged one
 * and keeps the version in force when the file is bad or gone, while a
 * reader's pinned version stays as it was. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/api-edge/tenants_reload.h"
#include "shared/plumbing/files.h"

static char *sandbox;
static size_t sandbox_len;

static void setup(void) {
    sandbox = files_read_all("config/tenants.sandbox.json", EDGE_TENANTS_MAX_BYTES, &sandbox_len);
    ck_assert_ptr_nonnull(sandbox);
}

static void teardown(void) { free(sandbox); }

START_TEST(parses_the_sandbox_file) {
    char err[256];
    edge_config *c = edge_config_parse(sandbox, sandbox_len, "sandbox", err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_ptr_nonnull(tenants_operator(c->tenants, "tp"));
    ck_assert_ptr_nonnull(tenants_provider(c->tenants, "testserviceprovider"));
    ck_assert_uint_eq(c->clients.n, 5);
    ck_assert(auth_clients_find(&c->clients, "sp-demo")->enabled);
    ck_assert(!auth_clients_find(&c->clients, "sp-disabled")->enabled);
    /* the same bytes, the same digest; one byte more, another */
    edge_config *again = edge_config_parse(sandbox, sandbox_len, "sandbox", err, sizeof err);
    ck_assert_ptr_nonnull(again);
    ck_assert_int_eq(memcmp(c->digest, again->digest, sizeof c->digest), 0);
    edge_config_free(again);
    char *more = malloc(sandbox_len + 2);
    memcpy(more, sandbox, sandbox_len);
    memcpy(more + sandbox_len, "\n", 2);
    again = edge_config_parse(more, sandbox_len + 1, "sandbox", err, sizeof err);
    ck_assert_ptr_nonnull(again);
    ck_assert_int_ne(memcmp(c->digest, again->digest, sizeof c->digest), 0);
    edge_config_free(again);
    free(more);
    edge_config_free(c);
    edge_config_free(NULL);
}
END_TEST

/* The sandbox document with `client` (a JSON object) as clients[0]. */
static char *with_first_client(const char *client) {
    json_t *doc = json_loadb(sandbox, sandbox_len, 0, NULL);
    json_t *c = json_loads(client, 0, NULL);
    ck_assert_msg(c != NULL, "test JSON: %s", client);
    json_array_set_new(json_object_get(doc, "clients"), 0, c);
    char *text = json_dumps(doc, 0);
    json_decref(doc);
    return text;
}

START_TEST(refuses_what_the_start_refuses) {
    static const struct {
        const char *text, *message;
    } bad[] = {
        {"", "f.json:1: "},
        {"{\"operators\": [", "f.json:1: "},
        {"[1, 2]", "f.json: needs arrays \"operators\" and \"serviceProviders\""},
        {"{\"operators\": [{\"id\": \"tp\"}], \"serviceProviders\": []}",
         "operators[0]: \"mccmnc\" must be a non-empty string"},
        {"{\"operators\": [], \"serviceProviders\": [], \"clients\": {}}",
         "f.json: clients must be an array"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_ptr_null(
            edge_config_parse(bad[i].text, strlen(bad[i].text), "f.json", err, sizeof err));
        ck_assert_msg(strstr(err, bad[i].message) != NULL, "bad[%zu]: %s", i, err);
    }
    static const struct {
        const char *client, *message;
    } clients[] = {
        {"{\"id\": \"x\", \"serviceProvider\": \"nobody\", \"secretHashes\": [\"sha256:"
         "780d8fbf4af201882e6ba1817810940f420f62702e991bc40a3d2e53eb8bc55c\"], \"scopes\": []}",
         "clients[0]: unknown serviceProvider"},
        {"{\"id\": \"x\", \"operator\": \"tp\", \"secretHashes\": [\"plain\"], \"scopes\": []}",
         "clients[0]: malformed secret hash"},
        {"{\"id\": \"sp-limited\", \"operator\": \"tp\", \"secretHashes\": [\"sha256:"
         "780d8fbf4af201882e6ba1817810940f420f62702e991bc40a3d2e53eb8bc55c\"], \"scopes\": []}",
         "duplicate id"},
        {"{\"id\": \"x\", \"operator\": \"tp\", \"secretHashes\": [\"sha256:"
         "780d8fbf4af201882e6ba1817810940f420f62702e991bc40a3d2e53eb8bc55c\"], \"scopes\": [], "
         "\"enabled\": \"no\"}",
         "enabled must be a boolean"},
    };
    for (size_t i = 0; i < sizeof clients / sizeof clients[0]; i++) {
        char *text = with_first_client(clients[i].client);
        err[0] = '\0';
        ck_assert_ptr_null(edge_config_parse(text, strlen(text), "f.json", err, sizeof err));
        ck_assert_msg(strstr(err, clients[i].message) && strncmp(err, "f.json: ", 8) == 0,
                      "clients[%zu]: %s", i, err);
        free(text);
    }
}
END_TEST

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static const edge_config *pinned(snapshot_version *v) { return snapshot_value(v); }

START_TEST(reload_publishes_good_files_only) {
    char path[64], err[256];
    snprintf(path, sizeof path, "/tmp/millom-tenants-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    write_file(path, sandbox);
    edge_config *first = edge_config_load(path, err, sizeof err);
    ck_assert_msg(first != NULL, "%s", err);
    snapshot_cell *cell = snapshot_cell_new(first, edge_config_free);
    snapshot_version *old = snapshot_pin(cell);

    ck_assert_int_eq(tenants_reload(cell, path, "test"), TENANTS_RELOAD_UNCHANGED);
    char *text = with_first_client("{\"id\": \"new-client\", \"operator\": \"tp\", "
                                   "\"secretHashes\": [\"sha256:780d8fbf4af201882e6ba1817810940f"
                                   "420f62702e991bc40a3d2e53eb8bc55c\"], \"scopes\": []}");
    write_file(path, text);
    free(text);
    ck_assert_int_eq(tenants_reload(cell, path, "test"), TENANTS_RELOAD_OK);
    snapshot_version *now = snapshot_pin(cell);
    ck_assert_ptr_nonnull(auth_clients_find(&pinned(now)->clients, "new-client"));
    ck_assert_ptr_null(auth_clients_find(&pinned(now)->clients, "sp-demo"));
    /* the version pinned before is still whole */
    ck_assert_ptr_nonnull(auth_clients_find(&pinned(old)->clients, "sp-demo"));
    ck_assert_ptr_null(auth_clients_find(&pinned(old)->clients, "new-client"));
    snapshot_unpin(old);

    write_file(path, "{\"operators\": [");
    ck_assert_int_eq(tenants_reload(cell, path, "test"), TENANTS_RELOAD_ERROR);
    unlink(path);
    ck_assert_int_eq(tenants_reload(cell, path, "test"), TENANTS_RELOAD_ERROR);
    snapshot_version *after = snapshot_pin(cell);
    ck_assert_ptr_eq(snapshot_value(after), snapshot_value(now)); /* still in force */
    snapshot_unpin(after);
    snapshot_unpin(now);
    snapshot_cell_free(cell);
}
END_TEST

int main(void) {
    Suite *s = suite_create("api_edge_tenants_reload");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, parses_the_sandbox_file);
    tcase_add_test(tc, refuses_what_the_start_refuses);
    tcase_add_test(tc, reload_publishes_good_files_only);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
