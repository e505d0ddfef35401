/* Process life cycle: a stop flag set by SIGINT/SIGTERM that every loop
 * checks, and the clocks everything uses. */
#include "shared/service.h"
#include "shared/log.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
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

const char *service_data_dir(void) {
    const char *d = getenv("MILLOM_DATA_DIR");
    return d && *d ? d : "var/data";
}
