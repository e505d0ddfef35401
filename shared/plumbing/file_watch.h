/* Notices that a file changed, or that the process got SIGHUP, and tells
 * a callback on its own thread: for configuration that is reloaded
 * without a restart (api-edge's tenants file).
 *
 * How a change is noticed, so that every way of replacing a file works:
 *  - inotify on the file's directory, not on the file: an editor that
 *    writes a new file and renames it over the old one, `mv new file`,
 *    a Kubernetes ConfigMap's symlink swap and a write in place all give
 *    the directory an event, while a watch on the old file would see
 *    only its deletion;
 *  - and, for file systems that give no events (a single-file bind mount
 *    written from outside the container, NFS), a stat(2) every poll_ms.
 * Either only marks the file as maybe changed. The callback runs once
 * the file's identity and times (device, inode, size, mtime, ctime,
 * following symlinks) have stayed the same for settle_ms and differ from
 * what the last callback saw: a burst of events for one save is one
 * callback, a file half-written when noticed is read once it is whole,
 * and an event for another file in the directory changes nothing. A file
 * that cannot be stat'ed (deleted, not yet renamed into place) is
 * waited for, with one warning. The callback also runs at every SIGHUP
 * (file changed or not; shared/plumbing/service.h's service_hangup_fd).
 *
 * Not handled: a change made between the caller's own first read of the
 * file and file_watch_start (start the watch right after that read), and
 * a file rewritten with the same size within one timestamp tick of a
 * file system with coarse times. */
#ifndef MILLOM_FILE_WATCH_H
#define MILLOM_FILE_WATCH_H

#include <stddef.h>

typedef enum {
    FILE_WATCH_CHANGED, /* the file was changed or replaced */
    FILE_WATCH_HANGUP,  /* SIGHUP */
} file_watch_reason;

/* Called on the watcher's thread, never twice at once. */
typedef void (*file_watch_fn)(void *arg, file_watch_reason why);

typedef struct {
    const char *path; /* copied */
    int watch;        /* 1: notice changes (inotify and stat); 0: only SIGHUP */
    int stat_only;    /* 1: no inotify, the stat fallback alone (tests) */
    int hangup;       /* 1: SIGHUP calls back too (one watcher per process) */
    int settle_ms;    /* quiet time before a change is told; 0: 100 */
    int poll_ms;      /* the stat fallback's interval; 0: 500 */
    file_watch_fn fn;
    void *arg;
} file_watch_opts;

typedef struct file_watch file_watch;

/* Starts the watcher thread. NULL with err when it cannot start (no
 * thread, no SIGHUP descriptor). Without inotify (or a watch on the
 * directory) it logs a warning and polls. */
file_watch *file_watch_start(const file_watch_opts *o, char *err, size_t errlen);
/* Stops the thread (waits for a running callback) and frees. NULL: nothing. */
void file_watch_stop(file_watch *w);

#endif
