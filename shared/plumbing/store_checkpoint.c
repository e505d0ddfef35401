/* Checkpoints off the writers' path (store.h, store_checkpoint_attach).
 *
 * By default the connection whose commit takes the WAL past 1,000 pages
 * copies them into the database file and fsyncs it, inside that commit:
 * under load a purchase lane or a consumer stalled on it now and then (13%
 * of purchase-executor's CPU in `make profile`, and the tail of its
 * latency). Here every connection of one file reports its commits to one
 * checkpointer thread per file, which runs a PASSIVE checkpoint (never
 * blocks readers or writers) on a connection of its own once the WAL has
 * grown past MILLOM_CHECKPOINT_PAGES.
 *
 * A passive checkpoint cannot always let the next writer start the WAL
 * afresh (a reader still on an older snapshot keeps its frames), and then
 * the WAL stays past the threshold for many commits. The checkpointer is
 * asked again only after the WAL grew by another MILLOM_CHECKPOINT_PAGES
 * (or started afresh), up to 4 thresholds, and then at every commit
 * (on_commit): asking at every commit from the first threshold ran a
 * checkpoint, with its two fdatasyncs, for nearly every purchase (8% of
 * purchase-executor's CPU, 0.9 thread wake-ups per purchase). */
#include "shared/plumbing/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/clock.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/settings.h"

/* WAL pages after which a checkpoint runs (MILLOM_CHECKPOINT_PAGES;
 * SQLite's own auto-checkpoint uses 1,000). A page written many times
 * between two checkpoints (an index's last leaf, the outbox's) is copied
 * once, so a longer interval costs less per commit; the WAL file grows to
 * about this many pages of 4 kB. */
static long checkpoint_pages = 1000;
/* WAL sizes (in MILLOM_CHECKPOINT_PAGES) past which every commit asks for
 * a checkpoint again (on_commit). */
#define ASK_EVERY_COMMIT_AFTER 4
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static void read_settings(void) {
    settings_reader s = SETTINGS_INIT;
    checkpoint_pages = settings_long(&s, "MILLOM_CHECKPOINT_PAGES", 1000, 100, 1000000);
    settings_exit_on_error(&s);
}

typedef struct checkpointer {
    char *path;
    sqlite3 *db; /* the thread's own connection */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int due, stop;
    /* WAL frames at the last request for a checkpoint; 0: none since the
     * WAL was last below the threshold. Written by committing threads. */
    atomic_int asked_at_frames;
    int users; /* connections attached (guarded by list_mu) */
    struct checkpointer *next;
} checkpointer;

static pthread_mutex_t list_mu = PTHREAD_MUTEX_INITIALIZER;
static checkpointer *list;

static void *checkpoint_thread(void *arg) {
    checkpointer *cp = arg;
    service_thread_name("checkpoint");
    pthread_mutex_lock(&cp->mu);
    for (;;) {
        while (!cp->due && !cp->stop) pthread_cond_wait(&cp->cv, &cp->mu);
        if (cp->stop) break;
        cp->due = 0;
        pthread_mutex_unlock(&cp->mu);
        int rc = sqlite3_wal_checkpoint_v2(cp->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
            log_warn("checkpoint of %s: %s", cp->path, sqlite3_errmsg(cp->db));
        pthread_mutex_lock(&cp->mu);
    }
    pthread_mutex_unlock(&cp->mu);
    return NULL;
}

/* sqlite3_wal_hook: after every commit of an attached connection. */
static int on_commit(void *arg, sqlite3 *db, const char *schema, int frames) {
    (void)db;
    (void)schema;
    checkpointer *cp = arg;
    if (frames < checkpoint_pages) {
        atomic_store(&cp->asked_at_frames, 0);
        return SQLITE_OK;
    }
    int asked_at = atomic_load(&cp->asked_at_frames);
    /* Asked at this size already: the WAL did not start afresh since.
     * Past ASK_EVERY_COMMIT_AFTER thresholds, every commit asks: the WAL
     * starts afresh only when a writer finds every frame copied back,
     * which checkpoints between two commits now and then achieve. Asked
     * only once per threshold of growth, the WAL grew without bound (7
     * MB/s under purchases, and every connection's WAL index with it). A
     * RESTART checkpoint bounded it too, but held writers back while it
     * waited for readers: notifications fell by a quarter. */
    if (asked_at && frames >= asked_at && frames < asked_at + checkpoint_pages &&
        frames < ASK_EVERY_COMMIT_AFTER * checkpoint_pages)
        return SQLITE_OK;
    atomic_store(&cp->asked_at_frames, frames);
    pthread_mutex_lock(&cp->mu);
    cp->due = 1;
    pthread_cond_signal(&cp->cv);
    pthread_mutex_unlock(&cp->mu);
    return SQLITE_OK;
}

static void checkpointer_free(checkpointer *cp) {
    pthread_cond_destroy(&cp->cv);
    pthread_mutex_destroy(&cp->mu);
    sqlite3_close_v2(cp->db);
    free(cp->path);
    free(cp);
}

static checkpointer *checkpointer_new(const char *path) {
    checkpointer *cp = calloc(1, sizeof *cp);
    if (!cp || !(cp->path = strdup(path))) {
        free(cp);
        return NULL;
    }
    pthread_mutex_init(&cp->mu, NULL);
    clock_cond_init(&cp->cv);
    /* The pragma also reads the file: a connection that has read nothing
     * yet does not know it is in WAL mode, and its checkpoints do nothing. */
    if (sqlite3_open_v2(path, &cp->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(cp->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
        pthread_create(&cp->thread, NULL, checkpoint_thread, cp) != 0) {
        log_warn("checkpointer for %s: %s; commits checkpoint themselves", path,
                 cp->db ? sqlite3_errmsg(cp->db) : "cannot open");
        checkpointer_free(cp);
        return NULL;
    }
    return cp;
}

void store_checkpoint_attach(sqlite3 *db) {
    pthread_once(&settings_once, read_settings);
    const char *path = sqlite3_db_filename(db, "main");
    if (!path || !*path) return; /* in memory: no WAL */
    pthread_mutex_lock(&list_mu);
    checkpointer *cp = list;
    while (cp && strcmp(cp->path, path) != 0) cp = cp->next;
    if (!cp && (cp = checkpointer_new(path))) {
        cp->next = list;
        list = cp;
    }
    if (cp) {
        cp->users++;
        sqlite3_wal_hook(db, on_commit, cp); /* replaces the auto-checkpoint */
    }
    pthread_mutex_unlock(&list_mu);
}

void store_checkpoint_detach(sqlite3 *db) {
    const char *path = sqlite3_db_filename(db, "main");
    if (!path || !*path) return;
    pthread_mutex_lock(&list_mu);
    checkpointer **at = &list;
    while (*at && strcmp((*at)->path, path) != 0) at = &(*at)->next;
    checkpointer *cp = *at;
    sqlite3_wal_hook(db, NULL, NULL);
    if (!cp || --cp->users > 0) {
        pthread_mutex_unlock(&list_mu);
        return;
    }
    *at = cp->next;
    pthread_mutex_unlock(&list_mu);
    pthread_mutex_lock(&cp->mu);
    cp->stop = 1;
    pthread_cond_signal(&cp->cv);
    pthread_mutex_unlock(&cp->mu);
    pthread_join(cp->thread, NULL);
    checkpointer_free(cp);
}
