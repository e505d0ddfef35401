/* What devbroker does to each connection the mock cluster accepts: sends
 * without Nagle's delay (TCP_NODELAY), and follows its fetches so that a
 * waiting fetch is answered as soon as records arrive (fetch_wait.c).
 *
 * Why TCP_NODELAY: librdkafka 2.0.2's mock cluster accepts its clients'
 * connections without it, so Nagle's algorithm holds a small response back
 * while an earlier one on the same connection is not yet acknowledged, and
 * the client acknowledges late (delayed ACK, up to 40 ms on Linux). Every
 * Millom client disables Nagle on its side (socket.nagle.disable,
 * shared/plumbing/kafka.c); a Kafka broker does on its side too. With the
 * mock's default, about 5% of the read path's requests took 25 to 60 ms at
 * 2,000 `/balance` a second offered (p99 50-57 ms); with TCP_NODELAY here,
 * the p99 was 24-26 ms.
 *
 * As with bind() in fixed_port.c, devbroker defines accept() itself: the
 * dynamic linker resolves librdkafka's call to this definition first (an
 * executable's symbols come before its libraries'), which calls the C
 * library's accept() and then does what was switched on. (Calling a
 * switch also makes the linker take this file, and with it fetch_wait.c,
 * from libdevbroker.a: nothing else refers to them.) */
#include "devbroker.h"

#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

typedef int (*accept_fn)(int, struct sockaddr *, socklen_t *);

static atomic_int nodelay, early_fetches;
static accept_fn resolved_accept;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;
static void resolve_accept(void) { resolved_accept = (accept_fn)dlsym(RTLD_NEXT, "accept"); }

void devbroker_disable_nagle(void) { atomic_store(&nodelay, 1); }
void devbroker_answer_fetches_early(void) { atomic_store(&early_fetches, 1); }

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
    pthread_once(&resolve_once, resolve_accept);
    if (!resolved_accept) {
        errno = ENOSYS;
        return -1;
    }
    int s = resolved_accept(fd, addr, len);
    if (s < 0) return s;
    int saved = errno;
    if (atomic_load(&nodelay)) {
        int one = 1;
        /* Fails harmlessly on a socket that is not TCP. */
        (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (atomic_load(&early_fetches)) devbroker_fetch_wait_track(s);
    errno = saved;
    return s;
}
