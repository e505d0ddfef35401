/* Process life cycle: a stop flag set by SIGINT/SIGTERM that every loop
 * checks, and the clocks everything uses. */
#include "shared/plumbing/settings.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/log.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop_requested;

static void on_signal(int sig) {
    (void)sig;
    atomic_store(&stop_requested, 1);
}

void service_init(const char *name) {
    log_init(name);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* glibc gives the free top of a thread's heap back to the kernel once
     * it passes 128 kB: madvise and a TLB shoot-down on every core, then a
     * page fault per page when the next message needs it again. Under
     * load that churn took ~7% of purchase-executor's CPU (make profile).
     * Each heap now keeps up to 1 MB of free memory. The caller's
     * MALLOC_TRIM_THRESHOLD_ (glibc's own variable), when set, stays in
     * force. */
    if (getenv("MALLOC_TRIM_THRESHOLD_") == NULL) mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
    /* glibc gives each thread that meets a locked arena an arena of its
     * own, up to 8 per core, each keeping its own free memory: with the
     * executor's 37 threads that was 13 arenas and ~1.3 MB resident. Two
     * arenas cost no CPU per purchase measurably (make bench, purchase-
     * executor 0.97 vs 0.88 ms per purchase) and keep ~0.7 MB less at the
     * peak. The caller's MALLOC_ARENA_MAX, when set, stays in force. */
    if (getenv("MALLOC_ARENA_MAX") == NULL) mallopt(M_ARENA_MAX, 2);
}

static atomic_int hangup_fd = -1;

/* Only async-signal-safe calls here: write(2) on the eventfd. */
static void on_hangup(int sig) {
    (void)sig;
    int saved = errno;
    uint64_t one = 1;
    int fd = atomic_load(&hangup_fd);
    if (fd >= 0) {
        ssize_t n = write(fd, &one, sizeof one); /* full counter: already readable */
        (void)n;
    }
    errno = saved;
}

int service_hangup_fd(void) {
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&mu);
    int fd = atomic_load(&hangup_fd);
    if (fd < 0) {
        fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd >= 0) {
            atomic_store(&hangup_fd, fd); /* before the handler can run */
            struct sigaction sa = {0};
            sa.sa_handler = on_hangup;
            sigemptyset(&sa.sa_mask);
            sa.sa_flags = SA_RESTART;
            sigaction(SIGHUP, &sa, NULL);
        }
    }
    pthread_mutex_unlock(&mu);
    return fd;
}

bool service_stopping(void) { return atomic_load(&stop_requested) != 0; }

void service_request_stop(void) { atomic_store(&stop_requested, 1); }

void service_wait_for_stop(void) {
    while (!service_stopping()) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "{hostname}" in MILLOM_DATA_DIR becomes this host's name, so replicas
 * that share one volume (docker compose --scale) keep their SQLite files
 * apart: state that follows its partition must be one instance's own. */
const char *service_data_dir(void) {
    static _Thread_local char data_dir[1024];
    const char *d = setting_str("MILLOM_DATA_DIR", "var/data");
    const char *at = strstr(d, "{hostname}");
    if (!at) return d;
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !*host) snprintf(host, sizeof host, "localhost");
    snprintf(data_dir, sizeof data_dir, "%.*s%s%s", (int)(at - d), d, host,
             at + strlen("{hostname}"));
    return data_dir;
}

void service_thread_name(const char *fmt, ...) {
    char name[16]; /* the kernel keeps 15 characters and the NUL */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    pthread_setname_np(pthread_self(), name);
}
