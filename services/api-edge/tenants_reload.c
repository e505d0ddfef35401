/* The tenants file in force and its reloads. See tenants_reload.h. */
#include "tenants_reload.h"
#include "shared/plumbing/file_watch.h"
#include "shared/plumbing/files.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/metrics.h"
#include "shared/plumbing/service.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- versions ---- */

edge_config *edge_config_parse(const char *text, size_t len, const char *name, char *err,
                               size_t errlen) {
    edge_config *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    unsigned int n = 0;
    if (!EVP_Digest(text, len, c->digest, &n, EVP_sha256(), NULL) || n != sizeof c->digest) {
        snprintf(err, errlen, "cannot hash %s", name);
        free(c);
        return NULL;
    }
    c->tenants = tenants_parse(text, len, name, err, errlen);
    if (!c->tenants) {
        free(c);
        return NULL;
    }
    char why[400];
    if (auth_clients_load(&c->clients, c->tenants, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", name, why);
        tenants_free(c->tenants);
        free(c);
        return NULL;
    }
    return c;
}

edge_config *edge_config_load(const char *path, char *err, size_t errlen) {
    size_t len = 0;
    char *text = files_read_all(path, EDGE_TENANTS_MAX_BYTES, &len);
    if (!text) {
        if (errno == EFBIG)
            snprintf(err, errlen, "%s: larger than %u bytes", path, EDGE_TENANTS_MAX_BYTES);
        else
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    edge_config *c = edge_config_parse(text, len, path, err, errlen);
    free(text);
    return c;
}

void edge_config_free(void *p) {
    edge_config *c = p;
    if (!c) return;
    auth_clients_free(&c->clients);
    tenants_free(c->tenants);
    free(c);
}

/* ---- what changed, for the log line ---- */

static int same_strings(const char *const *a, size_t na, const char *const *b, size_t nb) {
    if (na != nb) return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0) return 0;
    return 1;
}

static int same_str(const char *a, const char *b) {
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* 1 when a client's credentials, owner, scopes or rate differ. */
static int client_changed(const auth_client *a, const auth_client *b) {
    return !same_str(a->provider, b->provider) || !same_str(a->op, b->op) ||
           !same_strings(a->secret_hashes, a->n_secrets, b->secret_hashes, b->n_secrets) ||
           !same_strings(a->scopes, a->n_scopes, b->scopes, b->n_scopes) ||
           a->per_second != b->per_second || a->burst != b->burst;
}

/* Appends "<what> <id>" to out (", " between), or " ..." once it is nearly
 * full. */
static void note(char *out, size_t outlen, const char *what, const char *id) {
    size_t used = strlen(out);
    if (used + 4 >= outlen) return;
    if (used + strlen(what) + strlen(id) + 8 >= outlen) {
        if (!strstr(out, " ...")) snprintf(out + used, outlen - used, " ...");
        return;
    }
    snprintf(out + used, outlen - used, "%s%s %s", used ? ", " : "", what, id);
}

/* The clients' changes between two versions: "disabled sp-demo, changed
 * other-demo" (ids only: never a secret), "" when none. */
static void client_changes(const auth_clients *old, const auth_clients *next, char *out,
                           size_t outlen) {
    out[0] = '\0';
    for (size_t i = 0; i < next->n; i++) {
        const auth_client *n = &next->items[i];
        const auth_client *o = auth_clients_find(old, n->id);
        if (!o)
            note(out, outlen, "added", n->id);
        else if (o->enabled && !n->enabled)
            note(out, outlen, "disabled", n->id);
        else if (!o->enabled && n->enabled)
            note(out, outlen, "enabled", n->id);
        else if (client_changed(o, n))
            note(out, outlen, "changed", n->id);
    }
    for (size_t i = 0; i < old->n; i++)
        if (!auth_clients_find(next, old->items[i].id))
            note(out, outlen, "removed", old->items[i].id);
}

/* ---- reloads ---- */

static metric *m_ok, *m_unchanged, *m_error;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void metrics_init(void) {
    static const char help[] = "reloads of the tenants file (SIGHUP, file watch), by result";
    m_ok = metric_counter("millom_tenants_reloads_total", help, "result=\"ok\"");
    m_unchanged = metric_counter("millom_tenants_reloads_total", help, "result=\"unchanged\"");
    m_error = metric_counter("millom_tenants_reloads_total", help, "result=\"error\"");
}

tenants_reload_result tenants_reload(snapshot_cell *cell, const char *path, const char *why) {
    pthread_once(&metrics_once, metrics_init);
    int64_t started = mono_ms();
    char err[512];
    edge_config *next = edge_config_load(path, err, sizeof err);
    if (!next) {
        metric_add(m_error, 1);
        log_error("tenants reload (%s) refused; the tenants in force stay: %s", why, err);
        return TENANTS_RELOAD_ERROR;
    }
    snapshot_version *pin = snapshot_pin(cell);
    const edge_config *cur = snapshot_value(pin);
    int same = memcmp(cur->digest, next->digest, sizeof cur->digest) == 0;
    char changes[400];
    if (!same) client_changes(&cur->clients, &next->clients, changes, sizeof changes);
    snapshot_unpin(pin);
    if (same) {
        edge_config_free(next);
        metric_add(m_unchanged, 1);
        log_info("tenants reload (%s): %s is unchanged", why, path);
        return TENANTS_RELOAD_UNCHANGED;
    }
    size_t n_ops = tenants_operator_count(next->tenants), n_clients = next->clients.n;
    if (snapshot_publish(cell, next, edge_config_free) != 0) {
        edge_config_free(next);
        metric_add(m_error, 1);
        log_error("tenants reload (%s) refused; the tenants in force stay: out of memory", why);
        return TENANTS_RELOAD_ERROR;
    }
    /* next may be freed by now (a later reload): only copies from here */
    metric_add(m_ok, 1);
    log_info("tenants reloaded (%s) from %s in %lld ms (operators: %zu, clients: %zu); clients: %s",
             why, path, (long long)(mono_ms() - started), n_ops, n_clients,
             changes[0] ? changes : "no change");
    return TENANTS_RELOAD_OK;
}

struct tenants_reloader {
    snapshot_cell *cell;
    char *path;
    file_watch *watch;
};

static void on_watch(void *arg, file_watch_reason why) {
    tenants_reloader *r = arg;
    tenants_reload(r->cell, r->path, why == FILE_WATCH_HANGUP ? "SIGHUP" : "file changed");
}

tenants_reloader *tenants_reloader_start(snapshot_cell *cell, const char *path, int watch,
                                         char *err, size_t errlen) {
    pthread_once(&metrics_once, metrics_init); /* the series exist (at 0) before a reload */
    tenants_reloader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->cell = cell;
    file_watch_opts o = {.path = r->path, .watch = watch, .hangup = 1, .fn = on_watch, .arg = r};
    r->watch = file_watch_start(&o, err, errlen);
    if (!r->watch) {
        free(r->path);
        free(r);
        return NULL;
    }
    return r;
}

void tenants_reloader_stop(tenants_reloader *r) {
    if (!r) return;
    file_watch_stop(r->watch);
    free(r->path);
    free(r);
}
