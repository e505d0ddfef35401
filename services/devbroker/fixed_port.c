/* devbroker's fixed listening ports: see devbroker.h.
 *
 * Why this exists: librdkafka 2.0.2's mock cluster binds every broker to
 * 127.0.0.1 port 0 (an ephemeral port) and has no setting to choose one.
 * A restarted devbroker on a new port is a broker the running services
 * never find again (they read the bootstrap file once, at start). So
 * devbroker defines bind() itself: the dynamic linker resolves
 * librdkafka's calls to bind() to this definition first (an executable's
 * symbols come before its libraries'), and while a port plan is active a
 * loopback bind to port 0 gets the next planned port instead. Any other
 * bind, or a planned port that cannot be had (taken by another program),
 * goes to the C library's bind() unchanged, so the worst case is today's
 * ephemeral port. */
#include "devbroker.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "shared/plumbing/log.h"

#define MAX_PLANNED_PORTS 32

static pthread_mutex_t plan_mu = PTHREAD_MUTEX_INITIALIZER;
static int planned[MAX_PLANNED_PORTS];
static size_t n_planned, next_planned;

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

static bind_fn resolved_bind;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;
static void resolve_bind(void) { resolved_bind = (bind_fn)dlsym(RTLD_NEXT, "bind"); }

/* The next planned port, or 0 when none is left. */
static int take_planned_port(void) {
    pthread_mutex_lock(&plan_mu);
    int port = next_planned < n_planned ? planned[next_planned++] : 0;
    pthread_mutex_unlock(&plan_mu);
    return port;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    pthread_once(&resolve_once, resolve_bind);
    if (!resolved_bind) {
        errno = ENOSYS;
        return -1;
    }
    if (addr && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        int port = in->sin_port == 0 && in->sin_addr.s_addr == htonl(INADDR_LOOPBACK)
                       ? take_planned_port()
                       : 0;
        if (port > 0) {
            struct sockaddr_in fixed = *in;
            fixed.sin_port = htons((uint16_t)port);
            /* The killed devbroker's connections linger in TIME_WAIT on
             * this port; SO_REUSEADDR lets the listener bind regardless. */
            int one = 1;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (resolved_bind(fd, (const struct sockaddr *)&fixed, sizeof fixed) == 0) return 0;
            log_warn("devbroker: cannot listen on 127.0.0.1:%d (%s); using an ephemeral port", port,
                     strerror(errno));
        }
    }
    return resolved_bind(fd, addr, len);
}

void devbroker_plan_ports(const int *ports, size_t n) {
    pthread_mutex_lock(&plan_mu);
    n_planned = n < MAX_PLANNED_PORTS ? n : MAX_PLANNED_PORTS;
    for (size_t i = 0; i < n_planned; i++) planned[i] = ports[i];
    next_planned = 0;
    pthread_mutex_unlock(&plan_mu);
}

size_t devbroker_ports_from_file(const char *path, int *ports, size_t max) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[1024];
    size_t n = 0;
    if (fgets(line, sizeof line, f)) {
        /* "127.0.0.1:port[,127.0.0.1:port...]" as devbroker_write_file
         * wrote it; anything else is ignored. */
        char *save = NULL;
        for (char *tok = strtok_r(line, ",\r\n ", &save); tok && n < max;
             tok = strtok_r(NULL, ",\r\n ", &save)) {
            const char *colon = strrchr(tok, ':');
            if (!colon || strncmp(tok, "127.0.0.1:", 10) != 0) break;
            char *end;
            long port = strtol(colon + 1, &end, 10);
            if (*end || port <= 0 || port > 65535) break;
            ports[n++] = (int)port;
        }
    }
    fclose(f);
    return n;
}
