/* The tenants file as api-edge uses it, reloaded without a restart
 * (issue 15 item 3).
 *
 * One version (edge_config) is the tenants (operators, providers) and
 * their OAuth clients, parsed from the same bytes and checked against
 * each other. api-edge keeps the version in force in a snapshot cell
 * (shared/plumbing/snapshot.h): router.c pins it for each request, so
 * the authentication and the handler of one request see one version,
 * whatever is published meanwhile, and a version is freed when its last
 * request is done.
 *
 * A reload (SIGHUP, or a change of the file: shared/plumbing/file_watch.h)
 * reads and validates the whole file first; only a file that passes
 * everything the start-up checks is published. A file that cannot be
 * read, does not parse or fails validation is refused with one error log
 * line naming the reason, and the version in force stays. Every attempt
 * is logged and counted in millom_tenants_reloads_total{result="ok" |
 * "unchanged" | "error"} ("unchanged": the same bytes as the version in
 * force, nothing published). */
#ifndef API_EDGE_TENANTS_RELOAD_H
#define API_EDGE_TENANTS_RELOAD_H

#include <stddef.h>
#include "auth.h"
#include "shared/contracts/config.h"
#include "shared/plumbing/snapshot.h"

/* The largest tenants file read (a reload of a runaway file is refused). */
#define EDGE_TENANTS_MAX_BYTES (16u * 1024 * 1024)

/* One version of the tenants file. Never written once published. */
typedef struct edge_config {
    tenants *tenants;
    auth_clients clients;     /* the document's "clients" (auth.h) */
    unsigned char digest[32]; /* SHA-256 of the file's bytes */
} edge_config;

/* A version from the bytes of a tenants file (len bytes); name (its path)
 * names it in messages. NULL with err when it does not parse or fails
 * validation. Pure (no I/O): the fuzz target drives it. */
edge_config *edge_config_parse(const char *text, size_t len, const char *name, char *err,
                               size_t errlen);
/* Reads path (at most EDGE_TENANTS_MAX_BYTES) and parses it. */
edge_config *edge_config_load(const char *path, char *err, size_t errlen);
/* Frees a version (a void * for snapshot_cell_new and snapshot_publish). */
void edge_config_free(void *c);

typedef struct tenants_reloader tenants_reloader;

/* Reloads path into cell at every SIGHUP and, with watch, at every change
 * of the file (MILLOM_TENANTS_WATCH). NULL with err when the watcher
 * cannot start. */
tenants_reloader *tenants_reloader_start(snapshot_cell *cell, const char *path, int watch,
                                         char *err, size_t errlen);
/* Stops watching (waits for a reload in progress) and frees. */
void tenants_reloader_stop(tenants_reloader *r);

typedef enum {
    TENANTS_RELOAD_OK,
    TENANTS_RELOAD_UNCHANGED,
    TENANTS_RELOAD_ERROR
} tenants_reload_result;
/* One reload of path into cell now, logged and counted; why says what
 * asked for it in the log ("SIGHUP", "file changed"). */
tenants_reload_result tenants_reload(snapshot_cell *cell, const char *path, const char *why);

#endif
