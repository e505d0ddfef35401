/* See file_watch.h. One thread polls three descriptors (inotify on the
 * directory, the SIGHUP eventfd, its own stop eventfd) with a timeout
 * that is either the stat fallback's next check or the end of a pending
 * change's settling time. */
#include "shared/plumbing/file_watch.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* A change still moving after this long is told anyway. */
#define SETTLE_MAX_MS 1000

/* What tells one version of a file from another; present 0 when it
 * cannot be stat'ed. */
typedef struct {
    int present;
    int err; /* errno of the stat when not present */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim, ctim;
} file_sig;

struct file_watch {
    file_watch_opts o;
    char *path;
    int stop_fd;      /* eventfd written by file_watch_stop */
    int inotify_fd;   /* -1: none (watch off, or unavailable: stat only) */
    int hangup_fd;    /* -1: SIGHUP not wanted */
    file_sig initial; /* the file when the watch started */
    pthread_t thread;
};

static void sig_of(const char *path, file_sig *s) {
    struct stat st;
    memset(s, 0, sizeof *s);
    if (stat(path, &st) != 0) {
        s->err = errno;
        return;
    }
    s->present = 1;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->size = st.st_size;
    s->mtim = st.st_mtim;
    s->ctim = st.st_ctim;
}

static int sig_same(const file_sig *a, const file_sig *b) {
    if (a->present != b->present) return 0;
    if (!a->present) return 1;
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtim.tv_sec == b->mtim.tv_sec && a->mtim.tv_nsec == b->mtim.tv_nsec &&
           a->ctim.tv_sec == b->ctim.tv_sec && a->ctim.tv_nsec == b->ctim.tv_nsec;
}

/* Empties a non-blocking descriptor (events are only a "look again"). */
static void drain(int fd) {
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

/* The loop's state: what the last callback saw, and a change noticed but
 * not told yet (pending) with the file as it looked when last noticed. */
typedef struct {
    file_sig seen, candidate;
    int pending, warned_missing;
    int64_t pending_at, first_at, next_poll;
} watch_state;

static void mark_pending(file_watch *w, watch_state *st, int64_t now) {
    if (!st->pending) st->first_at = now;
    st->pending = 1;
    st->pending_at = now;
    sig_of(w->path, &st->candidate);
}

/* A pending change whose settling time is over: told when the file stayed
 * as noticed (or moved for too long) and differs from what was told last. */
static void settle(file_watch *w, watch_state *st, int64_t now) {
    file_sig cur;
    sig_of(w->path, &cur);
    if (!sig_same(&cur, &st->candidate) && now - st->first_at < SETTLE_MAX_MS) {
        st->candidate = cur; /* still being written: wait again */
        st->pending_at = now;
        return;
    }
    st->pending = 0;
    if (!cur.present) {
        if (!st->warned_missing)
            log_warn("%s: %s; waiting for it to be back (nothing reloaded)", w->path,
                     strerror(cur.err));
        st->warned_missing = 1;
        return;
    }
    st->warned_missing = 0;
    if (sig_same(&cur, &st->seen)) return; /* another file of the directory */
    st->seen = cur;
    w->o.fn(w->o.arg, FILE_WATCH_CHANGED);
}

static void *watch_main(void *arg) {
    service_thread_name("file-watch");
    file_watch *w = arg;
    watch_state st = {0};
    st.seen = w->initial;
    st.next_poll = mono_ms() + w->o.poll_ms;
    for (;;) {
        struct pollfd p[3] = {{.fd = w->stop_fd, .events = POLLIN},
                              {.fd = w->hangup_fd, .events = POLLIN},
                              {.fd = w->inotify_fd, .events = POLLIN}};
        int64_t now = mono_ms();
        int64_t until = st.pending ? st.pending_at + w->o.settle_ms : st.next_poll;
        int timeout = !w->o.watch && !st.pending ? -1 : until > now ? (int)(until - now) : 0;
        if (poll(p, 3, timeout) < 0 && errno != EINTR) {
            log_error("file watch %s: poll: %s", w->path, strerror(errno));
            break;
        }
        if (p[0].revents) break;
        now = mono_ms();
        if (p[1].revents) {
            drain(w->hangup_fd);
            sig_of(w->path, &st.seen); /* before the read the callback makes */
            st.pending = 0;
            w->o.fn(w->o.arg, FILE_WATCH_HANGUP);
            continue;
        }
        if (p[2].revents) {
            drain(w->inotify_fd);
            mark_pending(w, &st, now);
            continue;
        }
        if (st.pending && now >= st.pending_at + w->o.settle_ms) {
            settle(w, &st, now);
        } else if (w->o.watch && !st.pending && now >= st.next_poll) {
            st.next_poll = now + w->o.poll_ms;
            file_sig cur;
            sig_of(w->path, &cur);
            if (!sig_same(&cur, &st.seen) && !(st.warned_missing && !cur.present))
                mark_pending(w, &st, now);
        }
    }
    return NULL;
}

/* inotify on path's directory; -1 (with a warning) when there is none. */
static int watch_directory(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0 || inotify_add_watch(fd, dir,
                                    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                        IN_DELETE | IN_ATTRIB | IN_ONLYDIR) < 0) {
        log_warn("file watch: no inotify on %s (%s); checking %s by stat(2) only", dir,
                 strerror(errno), path);
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

file_watch *file_watch_start(const file_watch_opts *o, char *err, size_t errlen) {
    file_watch *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(o->path))) {
        free(w);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->o = *o;
    w->o.path = w->path;
    if (w->o.settle_ms <= 0) w->o.settle_ms = 100;
    if (w->o.poll_ms <= 0) w->o.poll_ms = 500;
    w->inotify_fd = -1;
    w->hangup_fd = -1;
    w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->stop_fd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    if (o->hangup && (w->hangup_fd = service_hangup_fd()) < 0) {
        snprintf(err, errlen, "cannot take SIGHUP: %s", strerror(errno));
        goto fail;
    }
    sig_of(w->path, &w->initial);
    if (o->watch && !o->stat_only) w->inotify_fd = watch_directory(w->path);
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        snprintf(err, errlen, "cannot start the file watch thread");
        goto fail;
    }
    return w;
fail:
    if (w->inotify_fd >= 0) close(w->inotify_fd);
    if (w->stop_fd >= 0) close(w->stop_fd);
    free(w->path);
    free(w);
    return NULL;
}

void file_watch_stop(file_watch *w) {
    if (!w) return;
    uint64_t one = 1;
    if (write(w->stop_fd, &one, sizeof one) != sizeof one)
        log_error("file watch %s: cannot stop its thread", w->path);
    pthread_join(w->thread, NULL);
    if (w->inotify_fd >= 0) close(w->inotify_fd);
    close(w->stop_fd);
    /* hangup_fd belongs to shared/plumbing/service.c: it stays open */
    free(w->path);
    free(w);
}
