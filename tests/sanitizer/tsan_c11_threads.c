/* ThreadSanitizer build only (make SAN=thread): C11 <threads.h> on top of
 * the pthread functions that ThreadSanitizer intercepts.
 *
 * Why: Debian's librdkafka 2.0.2 uses glibc's C11 threads (thrd_create,
 * mtx_lock, cnd_wait, ...). glibc implements them by calling its internal
 * pthread functions directly, so GCC 12's ThreadSanitizer never sees those
 * threads start (their first intercepted call then crashes on a thread
 * state that was never set up: SEGV near address 0) nor those locks taken
 * (every hand-over through librdkafka would look like a race). Linked into
 * every program of the ThreadSanitizer build, these definitions take the
 * place of glibc's for librdkafka, and each one is the pthread call glibc
 * itself would make, so behaviour is unchanged. Never part of a release or
 * ASan build. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

static int result(int rc) {
    if (rc == 0) return thrd_success;
    if (rc == ENOMEM) return thrd_nomem;
    if (rc == ETIMEDOUT) return thrd_timedout;
    if (rc == EBUSY) return thrd_busy;
    return thrd_error;
}

/* ---- threads */

typedef struct {
    thrd_start_t start;
    void *arg;
} thread_start;

static void *thread_main(void *p) {
    thread_start ts = *(thread_start *)p;
    free(p);
    return (void *)(intptr_t)ts.start(ts.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t func, void *arg) {
    thread_start *ts = malloc(sizeof *ts);
    if (!ts) return thrd_nomem;
    ts->start = func;
    ts->arg = arg;
    pthread_t t;
    int rc = pthread_create(&t, NULL, thread_main, ts);
    if (rc != 0) {
        free(ts);
        return result(rc);
    }
    *thr = (thrd_t)t;
    return thrd_success;
}

int thrd_join(thrd_t thr, int *res) {
    void *ret = NULL;
    int rc = pthread_join((pthread_t)thr, &ret);
    if (rc == 0 && res) *res = (int)(intptr_t)ret;
    return result(rc);
}

int thrd_detach(thrd_t thr) { return result(pthread_detach((pthread_t)thr)); }

/* ---- mutexes: glibc's mtx_t has the layout of pthread_mutex_t */

int mtx_init(mtx_t *m, int type) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    if (type & mtx_recursive) pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    int rc = pthread_mutex_init((pthread_mutex_t *)m, &a);
    pthread_mutexattr_destroy(&a);
    return result(rc);
}

int mtx_lock(mtx_t *m) { return result(pthread_mutex_lock((pthread_mutex_t *)m)); }
int mtx_trylock(mtx_t *m) { return result(pthread_mutex_trylock((pthread_mutex_t *)m)); }
int mtx_unlock(mtx_t *m) { return result(pthread_mutex_unlock((pthread_mutex_t *)m)); }
void mtx_destroy(mtx_t *m) { pthread_mutex_destroy((pthread_mutex_t *)m); }

int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts) {
    return result(pthread_mutex_timedlock((pthread_mutex_t *)m, ts));
}

/* ---- condition variables: cnd_t has the layout of pthread_cond_t */

int cnd_init(cnd_t *c) { return result(pthread_cond_init((pthread_cond_t *)c, NULL)); }
int cnd_signal(cnd_t *c) { return result(pthread_cond_signal((pthread_cond_t *)c)); }
int cnd_broadcast(cnd_t *c) { return result(pthread_cond_broadcast((pthread_cond_t *)c)); }
void cnd_destroy(cnd_t *c) { pthread_cond_destroy((pthread_cond_t *)c); }

int cnd_wait(cnd_t *c, mtx_t *m) {
    return result(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m));
}

int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict ts) {
    return result(pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, ts));
}

/* ---- once: once_flag wraps a pthread_once_t */

void call_once(once_flag *flag, void (*func)(void)) { pthread_once((pthread_once_t *)flag, func); }
