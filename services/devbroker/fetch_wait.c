/* devbroker answers a waiting fetch as soon as records arrive.
 *
 * Why this exists: librdkafka 2.0.2's mock cluster answers a Fetch that
 * finds no records only when the fetch's whole MaxWait has passed
 * (rdkafka_mock_handlers.c: "This isn't strictly correct since we should
 * cut the wait short and feed newly produced data if a producer writes to
 * the partitions"). A Kafka broker answers as soon as records arrive. With
 * the mock's way, every hop of the read path (api-edge -> offer-resolver
 * -> api-edge) waited for the rest of the consumer's fetch wait, whatever
 * the load: about 6 ms a round trip with a 2 ms wait, and the wait could
 * not be made longer without adding to every message's delay, so idle
 * consumers polled devbroker 500 times a second each.
 *
 * How: as with bind() in fixed_port.c and accept() in accepted.c,
 * devbroker defines recvmsg(), sendmsg(), poll() and close() itself (the
 * dynamic linker resolves librdkafka's calls to an executable's own
 * definitions first) and follows the Kafka protocol on the connections
 * the mock accepted once devbroker_answer_fetches_early() was called
 * (accepted.c hands them to devbroker_fetch_wait_track()):
 *   - a Fetch request (up to version 11, the mock's highest) is read with
 *     its MaxWait set to 0, so the mock answers it at once; its wait is
 *     remembered by correlation id;
 *   - an answer to it with no records and no error is held here (the mock
 *     is told it went out), until a Produce answer reports records
 *     appended to one of its partitions, its wait ends, or another answer
 *     must go out on the same connection (answers keep their order);
 *   - when records arrive, the held answer is dropped and the mock reads
 *     the same Fetch request again (a copy kept as it was read, MaxWait
 *     zeroed): poll() reports the connection readable and recvmsg() hands
 *     the mock the copy before anything more from the socket. Its new
 *     answer, with the records, goes out under the request's correlation
 *     id: one answer per request, as the client expects. This is done
 *     only when the held fetch is the last request the mock read on that
 *     connection and no other is half read, so answers keep their order;
 *     otherwise, and when its wait ends or another answer must go out
 *     first, the empty answer goes out, and the client fetches again, at
 *     once (librdkafka backs off only after errors), finding the records.
 *     Replaying saves that second round trip on every hop of the read
 *     path: two wake-ups of the client and one of the mock per delivery.
 * An empty answer is always a valid answer to a fetch, so the worst this
 * can do is answer early. Anything it does not understand (a malformed
 * frame, a version above the mock's) leaves that connection to the mock's
 * own way.
 *
 * The mock cluster serves every connection from one thread, the one that
 * accepted it; that thread's poll() is shortened to the next deadline of
 * the answers held on its connections, and those due are sent when it
 * returns. One mutex guards the state, so a call on another thread (there
 * is none on these sockets today) stays safe. */
#include "devbroker.h"

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"

#define API_PRODUCE 0
#define API_FETCH 1
#define FETCH_MAX_VERSION 11 /* the mock's highest; later ones have flexible headers */
#define PRODUCE_MAX_VERSION 7
#define MAX_CONN_FD 4096
/* Fetch and Produce requests whose answers have not gone out yet, per
 * connection. A Produce with acks=0 gets no answer: its entry is pushed
 * out by later ones. */
#define PENDING_MAX 64
/* A request's header: size, ApiKey, ApiVersion, CorrelationId. This file
 * reads it, the client id's length after it, and for a Fetch its MaxWait
 * (after the client id and ReplicaId). */
#define REQUEST_HEAD 12
#define MAX_FRAME (64 * 1024 * 1024)
/* A Fetch request longer than this is not copied, and so never replayed
 * (Millom's fetches name a few partitions: about 100 bytes each). */
#define MAX_REPLAY_FRAME (64 * 1024)

typedef struct {
    int32_t corrid;
    int16_t api_key;
    int16_t version;
    int32_t max_wait_ms;
    uint64_t seq;     /* its place among the requests read on the connection, from 1 */
    uint8_t *request; /* a Fetch's copy as the mock read it, or NULL; owned */
    uint32_t request_len;
} pending_request;

/* A topic partition of a held fetch: the topic name points into held. */
typedef struct {
    const uint8_t *topic;
    uint16_t topic_len;
    int32_t partition;
} held_partition;

typedef struct {
    bool off;        /* something not understood: the mock's own way from here on */
    pthread_t owner; /* the thread that accepted it: the mock cluster's */

    /* the request being read */
    uint32_t in_pos;   /* its bytes read so far */
    uint32_t in_total; /* its length with the size field; 0 until known */
    uint8_t in_head[REQUEST_HEAD];
    int16_t in_key, in_version;
    int32_t in_corrid;
    uint32_t wait_at; /* offset of a Fetch's MaxWait, 0 if none */
    uint8_t wait_bytes[4];
    uint8_t *in_copy;       /* a Fetch's bytes as the mock read them, for a replay */
    uint64_t requests_read; /* whole requests read on this connection */

    pending_request pending[PENDING_MAX];
    unsigned pending_first, pending_count;

    /* the answer going out */
    uint32_t out_left;

    /* a held empty fetch answer */
    uint8_t *held;
    size_t held_len, held_sent;
    int64_t held_due_ms; /* mono_ms() */
    held_partition *held_parts;
    size_t held_n_parts;
    bool held_released;    /* due now, but the socket took only part of it */
    uint8_t *held_request; /* the held fetch's request, to replay; may be NULL */
    uint32_t held_request_len;
    uint64_t held_seq;

    /* a request the mock is to read again before the socket's next bytes */
    uint8_t *replay;
    uint32_t replay_len, replay_pos;
} conn;

typedef ssize_t (*recvmsg_fn)(int, struct msghdr *, int);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr *, int);
typedef int (*poll_fn)(struct pollfd *, nfds_t, int);
typedef int (*close_fn)(int);

static recvmsg_fn real_recvmsg;
static sendmsg_fn real_sendmsg;
static poll_fn real_poll;
static close_fn real_close;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(conn *) conns[MAX_CONN_FD];
static int max_fd = -1;     /* highest tracked fd; under mu */
static atomic_int n_held;   /* connections holding an answer */
static atomic_int n_replay; /* connections with a request to read again */
/* What became of the fetches, for the log line at stop; under mu. */
static struct {
    unsigned long long with_records, held, replayed, woken, at_wait_end, before_next;
} stats;

static void resolve(void) {
    real_recvmsg = (recvmsg_fn)dlsym(RTLD_NEXT, "recvmsg");
    real_sendmsg = (sendmsg_fn)dlsym(RTLD_NEXT, "sendmsg");
    real_poll = (poll_fn)dlsym(RTLD_NEXT, "poll");
    real_close = (close_fn)dlsym(RTLD_NEXT, "close");
}

static conn *conn_of(int fd) {
    if (fd < 0 || fd >= MAX_CONN_FD) return NULL;
    return atomic_load_explicit(&conns[fd], memory_order_acquire);
}

static void drop_held(conn *c) {
    if (!c->held) return;
    free(c->held);
    free(c->held_parts);
    free(c->held_request);
    c->held = NULL;
    c->held_parts = NULL;
    c->held_request = NULL;
    c->held_len = c->held_sent = c->held_n_parts = 0;
    c->held_request_len = 0;
    c->held_released = false;
    atomic_fetch_sub(&n_held, 1);
}

static void drop_replay(conn *c) {
    if (!c->replay) return;
    free(c->replay);
    c->replay = NULL;
    c->replay_len = c->replay_pos = 0;
    atomic_fetch_sub(&n_replay, 1);
}

static void conn_free(conn *c) {
    if (!c) return;
    drop_held(c);
    drop_replay(c);
    for (unsigned i = 0; i < c->pending_count; i++)
        free(c->pending[(c->pending_first + i) % PENDING_MAX].request);
    free(c->in_copy);
    free(c);
}

void devbroker_fetch_wait_track(int fd) {
    if (fd < 0 || fd >= MAX_CONN_FD) return;
    conn *c = calloc(1, sizeof *c);
    if (!c) return; /* the mock's own way for this connection */
    c->owner = pthread_self();
    pthread_mutex_lock(&mu);
    conn_free(atomic_exchange(&conns[fd], c));
    if (fd > max_fd) max_fd = fd;
    pthread_mutex_unlock(&mu);
}

/* ---- reading the requests ---------------------------------------------- */

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void pending_push(conn *c, pending_request p) {
    if (c->pending_count == PENDING_MAX) { /* the oldest had no answer (acks=0) */
        free(c->pending[c->pending_first].request);
        c->pending_first = (c->pending_first + 1) % PENDING_MAX;
        c->pending_count--;
    }
    c->pending[(c->pending_first + c->pending_count) % PENDING_MAX] = p;
    c->pending_count++;
}

/* Takes the pending request with this correlation id, and its copy with
 * it; false if none. */
static bool pending_take(conn *c, int32_t corrid, pending_request *out) {
    for (unsigned i = 0; i < c->pending_count; i++) {
        unsigned at = (c->pending_first + i) % PENDING_MAX;
        if (c->pending[at].corrid != corrid) continue;
        *out = c->pending[at];
        /* Answers come in order, so this is nearly always the first. */
        for (unsigned j = i; j > 0; j--)
            c->pending[(c->pending_first + j) % PENDING_MAX] =
                c->pending[(c->pending_first + j - 1) % PENDING_MAX];
        c->pending_first = (c->pending_first + 1) % PENDING_MAX;
        c->pending_count--;
        return true;
    }
    return false;
}

static void request_done(conn *c) {
    uint64_t seq = ++c->requests_read;
    if (c->in_key == API_FETCH && c->wait_at) {
        int32_t wait = (int32_t)be32(c->wait_bytes);
        pending_push(c, (pending_request){c->in_corrid, c->in_key, c->in_version, wait, seq,
                                          c->in_copy, c->in_total});
        c->in_copy = NULL;
    } else if (c->in_key == API_PRODUCE && c->in_version <= PRODUCE_MAX_VERSION) {
        pending_push(c, (pending_request){c->in_corrid, c->in_key, c->in_version, 0, seq, NULL, 0});
    }
    free(c->in_copy);
    c->in_copy = NULL;
    c->in_pos = c->in_total = 0;
    c->wait_at = 0;
}

/* One byte of a request's head, at c->in_pos; may zero a Fetch's MaxWait. */
static void request_head_byte(conn *c, uint8_t *b) {
    uint32_t pos = c->in_pos;
    if (pos < REQUEST_HEAD) {
        c->in_head[pos] = *b;
        if (pos == REQUEST_HEAD - 1) {
            uint32_t size = be32(c->in_head);
            c->in_key = (int16_t)be16(c->in_head + 4);
            c->in_version = (int16_t)be16(c->in_head + 6);
            c->in_corrid = (int32_t)be32(c->in_head + 8);
            if (size < REQUEST_HEAD - 4 || size > MAX_FRAME || c->in_key < 0 || c->in_key > 1000)
                c->off = true;
            c->in_total = size + 4;
            /* A Fetch is copied as the mock reads it, to be read again
             * (without a copy it is only never replayed). */
            if (!c->off && c->in_key == API_FETCH && c->in_version <= FETCH_MAX_VERSION &&
                c->in_total <= MAX_REPLAY_FRAME && (c->in_copy = malloc(c->in_total)) != NULL)
                memcpy(c->in_copy, c->in_head, REQUEST_HEAD);
        }
    } else if (pos < REQUEST_HEAD + 2) {
        /* The client id's length (a nullable string: -1 is null). */
        c->wait_bytes[pos - REQUEST_HEAD] = *b;
        if (pos == REQUEST_HEAD + 1) {
            int16_t len = (int16_t)be16(c->wait_bytes);
            if (c->in_key == API_FETCH && c->in_version <= FETCH_MAX_VERSION)
                c->wait_at = REQUEST_HEAD + 2 + (uint32_t)(len < 0 ? 0 : len) + 4;
        }
    } else if (c->wait_at && pos >= c->wait_at && pos < c->wait_at + 4) {
        c->wait_bytes[pos - c->wait_at] = *b;
        *b = 0;
    }
}

/* The bytes the mock just read from a tracked connection. */
static void feed_request_bytes(conn *c, uint8_t *p, size_t len) {
    while (len > 0 && !c->off) {
        uint32_t head_end = REQUEST_HEAD;
        if (c->in_pos >= REQUEST_HEAD) head_end = c->wait_at ? c->wait_at + 4 : REQUEST_HEAD + 2;
        if (c->in_pos < head_end) {
            request_head_byte(c, p);
            if (c->in_copy && c->in_pos >= REQUEST_HEAD) c->in_copy[c->in_pos] = *p;
            c->in_pos++;
            p++;
            len--;
        } else {
            size_t skip = c->in_total - c->in_pos;
            if (skip > len) skip = len;
            if (c->in_copy) memcpy(c->in_copy + c->in_pos, p, skip);
            c->in_pos += (uint32_t)skip;
            p += skip;
            len -= skip;
        }
        if (c->in_total && c->in_pos >= c->in_total) {
            if (c->wait_at && c->in_total < c->wait_at + 4) c->wait_at = 0; /* too short */
            request_done(c);
        }
    }
}

/* Hands the mock what is left of c's replayed request, as a read of the
 * socket would (lock held). */
static ssize_t read_replay(conn *c, struct msghdr *msg) {
    size_t done = 0;
    for (size_t i = 0; i < (size_t)msg->msg_iovlen && c->replay_pos < c->replay_len; i++) {
        size_t n = msg->msg_iov[i].iov_len;
        if (n > c->replay_len - c->replay_pos) n = c->replay_len - c->replay_pos;
        memcpy(msg->msg_iov[i].iov_base, c->replay + c->replay_pos, n);
        feed_request_bytes(c, msg->msg_iov[i].iov_base, n);
        c->replay_pos += (uint32_t)n;
        done += n;
    }
    if (c->replay_pos == c->replay_len) drop_replay(c);
    msg->msg_flags = 0;
    return (ssize_t)done;
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
    pthread_once(&resolve_once, resolve);
    if (!real_recvmsg) {
        errno = ENOSYS;
        return -1;
    }
    if (atomic_load(&n_replay) > 0 && !(flags & MSG_PEEK) && conn_of(fd)) {
        pthread_mutex_lock(&mu);
        conn *c = conn_of(fd);
        if (c && c->replay) {
            ssize_t n = read_replay(c, msg);
            pthread_mutex_unlock(&mu);
            if (n > 0) return n;
        } else {
            pthread_mutex_unlock(&mu);
        }
    }
    ssize_t r = real_recvmsg(fd, msg, flags);
    if (r <= 0 || (flags & MSG_PEEK) || !conn_of(fd)) return r;
    int saved = errno;
    pthread_mutex_lock(&mu);
    conn *c = conn_of(fd);
    size_t left = (size_t)r;
    for (size_t i = 0; c && i < (size_t)msg->msg_iovlen && left > 0; i++) {
        size_t n = msg->msg_iov[i].iov_len < left ? msg->msg_iov[i].iov_len : left;
        feed_request_bytes(c, msg->msg_iov[i].iov_base, n);
        left -= n;
    }
    pthread_mutex_unlock(&mu);
    errno = saved;
    return r;
}

/* ---- reading the answers ------------------------------------------------ */

/* Reads across an answer's iovecs without copying them. */
typedef struct {
    const struct iovec *iov;
    size_t n_iov, at, off;
    size_t left; /* bytes of the frame not read yet */
    bool bad;
} iov_reader;

static void rd_bytes(iov_reader *r, uint8_t *dst, size_t len) {
    if (r->bad || len > r->left) {
        r->bad = true;
        return;
    }
    r->left -= len;
    while (len > 0) {
        while (r->at < r->n_iov && r->off == r->iov[r->at].iov_len) {
            r->at++;
            r->off = 0;
        }
        if (r->at == r->n_iov) {
            r->bad = true;
            return;
        }
        size_t n = r->iov[r->at].iov_len - r->off;
        if (n > len) n = len;
        if (dst) {
            memcpy(dst, (const uint8_t *)r->iov[r->at].iov_base + r->off, n);
            dst += n;
        }
        r->off += n;
        len -= n;
    }
}

static int64_t rd_int(iov_reader *r, size_t width) {
    uint8_t b[8] = {0};
    rd_bytes(r, b, width);
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++) v = v << 8 | b[i];
    if (width == 2) return (int16_t)v;
    if (width == 4) return (int32_t)v;
    return (int64_t)v;
}

/* Topic partitions of one answer, with their topic names copied. */
typedef struct {
    uint8_t names[2048];
    size_t names_len;
    held_partition parts[128];
    size_t n;
    bool overflow;
} partition_list;

static void list_add(partition_list *l, size_t name_at, uint16_t name_len, int32_t partition) {
    if (l->n == sizeof l->parts / sizeof l->parts[0]) {
        l->overflow = true;
        return;
    }
    l->parts[l->n++] = (held_partition){
        .topic = l->names + name_at, .topic_len = name_len, .partition = partition};
}

/* Reads a topic name into the list's names; returns its offset there. */
static bool rd_topic(iov_reader *r, partition_list *l, size_t *at, uint16_t *len) {
    int64_t n = rd_int(r, 2);
    if (r->bad || n < 0) return false;
    if (l->names_len + (size_t)n > sizeof l->names) {
        l->overflow = true;
        rd_bytes(r, NULL, (size_t)n);
        *at = 0;
        *len = 0;
        return !r->bad;
    }
    rd_bytes(r, l->names + l->names_len, (size_t)n);
    *at = l->names_len;
    *len = (uint16_t)n;
    l->names_len += (size_t)n;
    return !r->bad;
}

/* A topic of an answer: its name, into l, and how many partitions follow. */
static bool rd_topic_head(iov_reader *r, partition_list *l, size_t *at, uint16_t *len,
                          int64_t *parts) {
    if (!rd_topic(r, l, at, len)) return false;
    *parts = rd_int(r, 4);
    return !r->bad && *parts >= 0;
}

/* Whether a Fetch answer (after its correlation id) has no records and no
 * error in any partition, and its partitions. */
static bool fetch_answer_empty(iov_reader *r, int version, partition_list *l) {
    if (version >= 1) rd_int(r, 4); /* ThrottleTime */
    if (version >= 7) {
        if (rd_int(r, 2) != 0) return false; /* ErrorCode */
        rd_int(r, 4);                        /* SessionId */
    }
    int64_t topics = rd_int(r, 4);
    if (r->bad || topics <= 0) return false;
    for (int64_t t = 0; t < topics; t++) {
        size_t at;
        uint16_t len;
        int64_t parts;
        if (!rd_topic_head(r, l, &at, &len, &parts)) return false;
        for (int64_t p = 0; p < parts; p++) {
            int32_t partition = (int32_t)rd_int(r, 4);
            if (rd_int(r, 2) != 0) return false; /* ErrorCode */
            rd_int(r, 8);                        /* HighWatermark */
            if (version >= 4) rd_int(r, 8);      /* LastStableOffset */
            if (version >= 5) rd_int(r, 8);      /* LogStartOffset */
            if (version >= 4) {
                int64_t aborted = rd_int(r, 4);
                if (aborted > 0) rd_bytes(r, NULL, (size_t)aborted * 16);
            }
            if (version >= 11) rd_int(r, 4); /* PreferredReadReplica */
            int64_t records = rd_int(r, 4);
            if (r->bad || records > 0) return false;
            list_add(l, at, len, partition);
        }
    }
    return !r->bad && r->left == 0 && !l->overflow;
}

/* The partitions a Produce answer (after its correlation id) reports
 * records appended to. */
static bool produce_answer_partitions(iov_reader *r, int version, partition_list *l) {
    int64_t topics = rd_int(r, 4);
    if (r->bad || topics < 0) return false;
    for (int64_t t = 0; t < topics; t++) {
        size_t at;
        uint16_t len;
        int64_t parts;
        if (!rd_topic_head(r, l, &at, &len, &parts)) return false;
        for (int64_t p = 0; p < parts; p++) {
            int32_t partition = (int32_t)rd_int(r, 4);
            int64_t error = rd_int(r, 2);
            rd_int(r, 8);                   /* BaseOffset */
            if (version >= 2) rd_int(r, 8); /* LogAppendTime */
            if (version >= 5) rd_int(r, 8); /* LogStartOffset */
            if (r->bad) return false;
            if (error == 0) list_add(l, at, len, partition);
        }
    }
    return !r->bad;
}

/* ---- holding and sending ------------------------------------------------ */

/* Sends what is left of c's held answer; true once all of it went out (or
 * the connection failed, and the mock will find out on its own). */
static bool send_held(int fd, conn *c) {
    while (c->held_sent < c->held_len) {
        struct iovec iov = {c->held + c->held_sent, c->held_len - c->held_sent};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n = real_sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->held_released = true;
            return false;
        }
        if (n <= 0) break;
        c->held_sent += (size_t)n;
    }
    drop_held(c);
    return true;
}

/* Holds an empty answer to the fetch p, taking p's request copy. */
static bool hold(conn *c, const struct msghdr *msg, size_t frame, partition_list *l,
                 pending_request *p) {
    uint8_t *copy = malloc(frame + l->names_len);
    held_partition *parts = malloc((l->n ? l->n : 1) * sizeof *parts);
    if (!copy || !parts) {
        free(copy);
        free(parts);
        return false;
    }
    iov_reader r = {msg->msg_iov, (size_t)msg->msg_iovlen, 0, 0, frame, false};
    rd_bytes(&r, copy, frame);
    memcpy(copy + frame, l->names, l->names_len);
    for (size_t i = 0; i < l->n; i++) {
        parts[i] = l->parts[i];
        parts[i].topic = copy + frame + (l->parts[i].topic - l->names);
    }
    c->held = copy;
    c->held_len = frame;
    c->held_sent = 0;
    c->held_parts = parts;
    c->held_n_parts = l->n;
    c->held_due_ms = mono_ms() + p->max_wait_ms;
    c->held_released = false;
    c->held_request = p->request;
    c->held_request_len = p->request_len;
    c->held_seq = p->seq;
    p->request = NULL;
    atomic_fetch_add(&n_held, 1);
    return true;
}

static bool holds_partition(const conn *c, const held_partition *p) {
    for (size_t i = 0; i < c->held_n_parts; i++) {
        const held_partition *h = &c->held_parts[i];
        if (h->partition == p->partition && h->topic_len == p->topic_len &&
            memcmp(h->topic, p->topic, p->topic_len) == 0)
            return true;
    }
    return false;
}

/* Whether c's held fetch can be read again by the mock instead of going
 * out empty: nothing of it went out, it is the last request read on the
 * connection (a later one's answer would go out before it) and no other
 * is half read. */
static bool can_replay(const conn *c) {
    return c->held_request && !c->off && !c->replay && c->held_sent == 0 && !c->held_released &&
           c->in_pos == 0 && c->requests_read == c->held_seq;
}

/* Records were appended to these partitions: the fetches held on them
 * are answered now, by the mock reading them again, or empty. */
static void wake_fetches(const partition_list *l) {
    if (atomic_load(&n_held) == 0) return;
    for (int fd = 0; fd <= max_fd; fd++) {
        conn *c = conn_of(fd);
        if (!c || !c->held) continue;
        for (size_t i = 0; i < l->n; i++) {
            if (!holds_partition(c, &l->parts[i])) continue;
            if (can_replay(c)) {
                stats.replayed++;
                c->replay = c->held_request;
                c->replay_len = c->held_request_len;
                c->replay_pos = 0;
                c->held_request = NULL;
                atomic_fetch_add(&n_replay, 1);
                drop_held(c);
            } else {
                stats.woken++;
                send_held(fd, c);
            }
            break;
        }
    }
}

/* Sends the held answers of the connections this thread serves whose wait
 * is over (or that were released but found the socket full); returns the
 * milliseconds to the next deadline, -1 if none. */
static int64_t send_due(pthread_t self) {
    if (atomic_load(&n_held) == 0) return -1;
    int64_t now = mono_ms(), next = -1;
    for (int fd = 0; fd <= max_fd; fd++) {
        conn *c = conn_of(fd);
        if (!c || !c->held || !pthread_equal(c->owner, self)) continue;
        if (c->held_released || c->held_due_ms <= now) {
            if (!c->held_released) stats.at_wait_end++;
            if (send_held(fd, c)) continue;
            next = 1; /* the socket was full: try again in a moment */
            continue;
        }
        int64_t in = c->held_due_ms - now;
        if (next < 0 || in < next) next = in;
    }
    return next;
}

static size_t iov_total(const struct msghdr *msg) {
    size_t t = 0;
    for (size_t i = 0; i < (size_t)msg->msg_iovlen; i++) t += msg->msg_iov[i].iov_len;
    return t;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
    pthread_once(&resolve_once, resolve);
    if (!real_sendmsg) {
        errno = ENOSYS;
        return -1;
    }
    if (!conn_of(fd)) return real_sendmsg(fd, msg, flags);

    pthread_mutex_lock(&mu);
    conn *c = conn_of(fd);
    if (!c || c->off) {
        if (c && c->held && !send_held(fd, c)) {
            pthread_mutex_unlock(&mu);
            errno = EAGAIN;
            return -1;
        }
        pthread_mutex_unlock(&mu);
        return real_sendmsg(fd, msg, flags);
    }
    partition_list list;
    partition_list *produced = NULL;
    ssize_t result;
    if (c->out_left == 0) {
        /* A new answer: a held one goes first. */
        if (c->held && !c->held_released) stats.before_next++;
        if (c->held && !send_held(fd, c)) {
            pthread_mutex_unlock(&mu);
            errno = EAGAIN;
            return -1;
        }
        size_t avail = iov_total(msg);
        iov_reader r = {msg->msg_iov, (size_t)msg->msg_iovlen, 0, 0, avail, false};
        uint32_t size = (uint32_t)rd_int(&r, 4);
        int32_t corrid = (int32_t)rd_int(&r, 4);
        if (r.bad || size < 4 || size > MAX_FRAME) {
            c->off = true;
            pthread_mutex_unlock(&mu);
            return real_sendmsg(fd, msg, flags);
        }
        size_t frame = (size_t)size + 4;
        pending_request p;
        bool whole = avail >= frame;
        r.left = frame - 8;
        if (pending_take(c, corrid, &p)) {
            list.names_len = list.n = 0;
            list.overflow = false;
            if (whole && p.api_key == API_FETCH && p.max_wait_ms > 0 &&
                fetch_answer_empty(&r, p.version, &list) && hold(c, msg, frame, &list, &p)) {
                stats.held++;
                pthread_mutex_unlock(&mu);
                return (ssize_t)frame; /* "sent": it goes out when woken or due */
            }
            free(p.request);
            if (p.api_key == API_FETCH) stats.with_records++; /* or an error, or not waiting */
            if (whole && p.api_key == API_PRODUCE &&
                produce_answer_partitions(&r, p.version, &list))
                produced = &list;
        }
        c->out_left = (uint32_t)frame;
    }
    result = real_sendmsg(fd, msg, flags);
    int saved = errno;
    if (result > 0 && (size_t)result > c->out_left)
        c->off = true; /* more than one answer in a call: not the mock's way */
    else if (result > 0)
        c->out_left -= (uint32_t)result;
    if (produced) wake_fetches(produced);
    pthread_mutex_unlock(&mu);
    errno = saved;
    return result;
}

void devbroker_fetch_wait_log(void) {
    pthread_mutex_lock(&mu);
    /* A replayed fetch is answered once more, at once: not counted twice. */
    unsigned long long at_once =
        stats.with_records > stats.replayed ? stats.with_records - stats.replayed : 0;
    log_info("devbroker: fetches answered at once %llu, held empty %llu (read again when records "
             "arrived %llu, answered empty when records arrived %llu, at the end of their wait "
             "%llu, before the next answer %llu)",
             at_once, stats.held, stats.replayed, stats.woken, stats.at_wait_end,
             stats.before_next);
    pthread_mutex_unlock(&mu);
}

/* ---- the mock thread's wait, and closing -------------------------------- */

/* Whether the mock reads p's connection again now: it has a request to
 * read again and p asks for POLLIN (lock held). */
static bool replay_readable(const struct pollfd *p) {
    const conn *c = conn_of(p->fd);
    return c && c->replay && (p->events & POLLIN);
}

/* Whether any of fds has a request to read again. */
static bool replay_waiting(const struct pollfd *fds, nfds_t nfds) {
    if (atomic_load(&n_replay) == 0) return false;
    bool any = false;
    pthread_mutex_lock(&mu);
    for (nfds_t i = 0; i < nfds && !any; i++) any = replay_readable(&fds[i]);
    pthread_mutex_unlock(&mu);
    return any;
}

/* Adds POLLIN to the connections with a request to read again; returns
 * poll()'s count with them. */
static int add_replay_events(struct pollfd *fds, nfds_t nfds, int ready) {
    pthread_mutex_lock(&mu);
    for (nfds_t i = 0; i < nfds; i++) {
        if (!replay_readable(&fds[i])) continue;
        if (!fds[i].revents) ready++;
        fds[i].revents |= POLLIN;
    }
    pthread_mutex_unlock(&mu);
    return ready;
}

int poll(struct pollfd *fds, nfds_t nfds, int timeout) {
    pthread_once(&resolve_once, resolve);
    if (!real_poll) {
        errno = ENOSYS;
        return -1;
    }
    bool replay = replay_waiting(fds, nfds);
    if (!replay && atomic_load(&n_held) == 0) return real_poll(fds, nfds, timeout);
    pthread_t self = pthread_self();
    if (replay) {
        /* A request to read again is ready now: the socket's own events
         * are looked at without waiting. */
        timeout = 0;
    } else {
        pthread_mutex_lock(&mu);
        int64_t next = send_due(self);
        pthread_mutex_unlock(&mu);
        if (next >= 0 && (timeout < 0 || next < timeout)) timeout = (int)next;
    }
    int r = real_poll(fds, nfds, timeout);
    int saved = errno;
    /* Held answers due go out, replay or not (under steady load a replay
     * waits at nearly every poll). */
    if (atomic_load(&n_held) > 0) {
        pthread_mutex_lock(&mu);
        send_due(self);
        pthread_mutex_unlock(&mu);
    }
    errno = saved;
    return r < 0 || !replay ? r : add_replay_events(fds, nfds, r);
}

int close(int fd) {
    pthread_once(&resolve_once, resolve);
    if (!real_close) {
        errno = ENOSYS;
        return -1;
    }
    if (conn_of(fd)) {
        pthread_mutex_lock(&mu);
        conn_free(atomic_exchange(&conns[fd], NULL));
        pthread_mutex_unlock(&mu);
    }
    return real_close(fd);
}
