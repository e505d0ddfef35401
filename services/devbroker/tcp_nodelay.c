/* devbroker's connections send at once (TCP_NODELAY).
 *
 * Why this exists: librdkafka 2.0.2's mock cluster accepts its clients'
 * connections without TCP_NODELAY, so Nagle's algorithm holds a small
 * response back while an earlier one on the same connection is not yet
 * acknowledged, and the client acknowledges late (delayed ACK, up to
 * 40 ms on Linux). Every Millom client disables Nagle on its side
 * (socket.nagle.disable, shared/plumbing/kafka.c); a Kafka broker does on
 * its side too. With the mock's default, about 5% of the read path's
 * requests took 25 to 60 ms at 2,000 `/balance` a second offered (p99
 * 50-57 ms); with TCP_NODELAY here, the p99 was 24-26 ms.
 *
 * As with bind() in fixed_port.c, devbroker defines accept() itself: the
 * dynamic linker resolves librdkafka's call to this definition first (an
 * executable's symbols come before its libraries'), which calls the C
 * library's accept() and, once devbroker_disable_nagle() was called,
 * sets TCP_NODELAY on the new connection. (The call also makes the linker
 * take this file from libdevbroker.a: nothing else refers to it.) */
#include "devbroker.h"

#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

typedef int (*accept_fn)(int, struct sockaddr *, socklen_t *);

static atomic_int nodelay;
static accept_fn resolved_accept;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;
static void resolve_accept(void) { resolved_accept = (accept_fn)dlsym(RTLD_NEXT, "accept"); }

void devbroker_disable_nagle(void) { atomic_store(&nodelay, 1); }

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
    pthread_once(&resolve_once, resolve_accept);
    if (!resolved_accept) {
        errno = ENOSYS;
        return -1;
    }
    int s = resolved_accept(fd, addr, len);
    if (s >= 0 && atomic_load(&nodelay)) {
        int one = 1;
        /* Fails harmlessly on a socket that is not TCP. */
        int saved = errno;
        (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        errno = saved;
    }
    return s;
}
