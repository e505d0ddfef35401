/* `dlq list` and `dlq replay`: the dead-letter twins of the consumed topics
 * (<topic>.dlq, shared/plumbing/topics.h), as shared/plumbing/kafka.c
 * writes them: the original key, payload and headers plus the headers
 * "error", "source.topic", "source.partition" and "source.offset".
 *
 * Progress is kept as the committed offsets of one consumer group,
 * millomctl.dlq-replay, on the .dlq topics: a message is "pending" from that
 * offset (the beginning when none) up to the end. `list` shows the pending
 * messages and commits nothing. `replay` republishes each pending message
 * to its source topic with its key, payload and original headers (the four
 * DLQ headers dropped), waits until the broker acknowledged it, and only
 * then commits its DLQ offset: a stop, a crash or a broker error loses
 * nothing, and a re-run goes on after the last message delivered. Only the
 * messages there when the command started are replayed, so a message that
 * fails again (back in the DLQ) is not replayed twice in one run. One
 * replay of a topic at a time. */
#include "millomctl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/clock.h"
#include "shared/plumbing/crypto.h"
#include "shared/plumbing/kafka.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/topics.h"

#define REPLAY_GROUP "millomctl.dlq-replay"
#define PROGRESS_EVERY_MS 1000

typedef struct {
    int32_t partition;
    int64_t low, high; /* watermarks when the command started */
    int64_t start;     /* the first pending offset */
    int done;
} part_range;

typedef struct {
    rd_kafka_t *rk; /* consumer in group REPLAY_GROUP, assign() only */
    part_range *parts;
    int n_parts;
    long timeout_ms;
} dlq_reader;

static const char *const DLQ_HEADERS[] = {"error", "source.topic", "source.partition",
                                          "source.offset", NULL};

/* The consumed topic named by arg ("millom.queries" or
 * "millom.queries.dlq"), or NULL. */
static const millom_topic *source_topic(const char *arg) {
    size_t len = strlen(arg), sfx = strlen(TOPIC_DLQ_SUFFIX);
    if (len > sfx && strcmp(arg + len - sfx, TOPIC_DLQ_SUFFIX) == 0) len -= sfx;
    for (const millom_topic *t = millom_topics; t->name; t++)
        if (t->kind == TOPIC_KIND_CONSUMED && strlen(t->name) == len &&
            strncmp(t->name, arg, len) == 0)
            return t;
    return NULL;
}

static int exit_code_of(rd_kafka_resp_err_t e) {
    return e == RD_KAFKA_RESP_ERR__TRANSPORT || e == RD_KAFKA_RESP_ERR__TIMED_OUT ||
                   e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN
               ? CTL_EXIT_UNREACHABLE
               : CTL_EXIT_FAILED;
}

static void reader_close(dlq_reader *r) {
    if (r->rk) {
        rd_kafka_consumer_close(r->rk);
        rd_kafka_destroy(r->rk);
    }
    free(r->parts);
    memset(r, 0, sizeof *r);
}

/* Opens the consumer and reads the DLQ's partitions, watermarks and the
 * replay group's committed offsets. 0, or a CTL_EXIT_* code. */
static int reader_open(dlq_reader *r, const char *dlq, long timeout_ms) {
    memset(r, 0, sizeof *r);
    r->timeout_ms = timeout_ms;
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (kafka_conf_common(conf, "millomctl", err, sizeof err) ||
        rd_kafka_conf_set(conf, "group.id", REPLAY_GROUP, err, sizeof err) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) ||
        rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", err, sizeof err) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err)) {
        fprintf(stderr, "millomctl: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return CTL_EXIT_USAGE;
    }
    r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!r->rk) {
        fprintf(stderr, "millomctl: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return CTL_EXIT_FAILED;
    }
    rd_kafka_poll_set_consumer(r->rk);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->rk, dlq, NULL);
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_resp_err_t e = rkt ? rd_kafka_metadata(r->rk, 0, rkt, &md, (int)timeout_ms)
                                : RD_KAFKA_RESP_ERR__INVALID_ARG;
    if (rkt) rd_kafka_topic_destroy(rkt);
    if (!e && md->topic_cnt != 1) e = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    if (!e && md->topics[0].err) e = md->topics[0].err;
    if (e) {
        fprintf(stderr, "millomctl: metadata of %s: %s\n", dlq, rd_kafka_err2str(e));
        if (md) rd_kafka_metadata_destroy(md);
        return exit_code_of(e);
    }
    r->n_parts = md->topics[0].partition_cnt;
    r->parts = calloc((size_t)r->n_parts + 1, sizeof *r->parts);
    rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_new(r->n_parts);
    for (int i = 0; r->parts && i < r->n_parts; i++) {
        r->parts[i].partition = md->topics[0].partitions[i].id;
        rd_kafka_topic_partition_list_add(committed, dlq, r->parts[i].partition);
    }
    rd_kafka_metadata_destroy(md);
    if (!r->parts) {
        rd_kafka_topic_partition_list_destroy(committed);
        return CTL_EXIT_FAILED;
    }
    e = rd_kafka_committed(r->rk, committed, (int)timeout_ms);
    for (int i = 0; !e && i < r->n_parts; i++) {
        part_range *p = &r->parts[i];
        e = rd_kafka_query_watermark_offsets(r->rk, dlq, p->partition, &p->low, &p->high,
                                             (int)timeout_ms);
        int64_t c = committed->elems[i].offset;
        /* No commit yet, or one from before the topic was emptied (a
         * devbroker restart): start at the oldest retained message. */
        p->start = c >= p->low && c <= p->high ? c : p->low;
        p->done = p->start >= p->high;
    }
    rd_kafka_topic_partition_list_destroy(committed);
    if (e) {
        fprintf(stderr, "millomctl: offsets of %s: %s\n", dlq, rd_kafka_err2str(e));
        return exit_code_of(e);
    }
    return 0;
}

static long pending_count(const dlq_reader *r) {
    long n = 0;
    for (int i = 0; i < r->n_parts; i++) n += (long)(r->parts[i].high - r->parts[i].start);
    return n;
}

static part_range *range_of(dlq_reader *r, int32_t partition) {
    for (int i = 0; i < r->n_parts; i++)
        if (r->parts[i].partition == partition) return &r->parts[i];
    return NULL;
}

/* The value of header `name` as text (at most len - 1 bytes), "" if none. */
static void header_text(rd_kafka_headers_t *h, const char *name, char *out, size_t len) {
    const void *v = NULL;
    size_t size = 0;
    out[0] = '\0';
    if (h && rd_kafka_header_get_last(h, name, &v, &size) == RD_KAFKA_RESP_ERR_NO_ERROR && v) {
        if (size >= len) size = len - 1;
        memcpy(out, v, size);
        out[size] = '\0';
    }
}

/* One message as a row: what list, --dry-run and replay print. */
static json_t *message_row(const rd_kafka_message_t *m) {
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR) h = NULL;
    char error[512], src[256], src_part[16], src_off[32], at[32] = "";
    header_text(h, "error", error, sizeof error);
    header_text(h, "source.topic", src, sizeof src);
    header_text(h, "source.partition", src_part, sizeof src_part);
    header_text(h, "source.offset", src_off, sizeof src_off);
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    if (ts > 0) clock_rfc3339_ms(ts, at, sizeof at);
    char *key = m->key ? strndup(m->key, m->key_len) : NULL;
    char *payload = crypto_b64_encode(m->payload ? m->payload : "", m->len);
    json_t *headers = json_object();
    size_t idx = 0;
    const char *name;
    const void *v;
    size_t size;
    while (h && rd_kafka_header_get_all(h, idx++, &name, &v, &size) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        int dlq_header = 0;
        for (const char *const *d = DLQ_HEADERS; *d; d++) dlq_header |= strcmp(name, *d) == 0;
        if (dlq_header || !v) continue;
        json_t *text = json_stringn(v, size);
        if (!text) { /* not UTF-8: base64, marked as such */
            char *b64 = crypto_b64_encode(v, size), *marked = NULL;
            if (b64 && asprintf(&marked, "base64:%s", b64) >= 0) text = json_string(marked);
            free(b64);
            free(marked);
        }
        json_object_set_new(headers, name, text ? text : json_null());
    }
    json_t *row = json_pack("{s:I,s:I,s:s,s:s?,s:s,s:s,s:s,s:s,s:I,s:o,s:s?}", "partition",
                            (json_int_t)m->partition, "offset", (json_int_t)m->offset, "timestamp",
                            at, "key", key, "error", error, "sourceTopic", src, "sourcePartition",
                            src_part, "sourceOffset", src_off, "bytes", (json_int_t)m->len,
                            "headers", headers, "payloadBase64", payload);
    free(key);
    free(payload);
    return row;
}

/* The message's headers without the four DLQ ones (NULL when none are
 * left), for the replayed copy. */
static rd_kafka_headers_t *original_headers(const rd_kafka_message_t *m) {
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR || !h) return NULL;
    rd_kafka_headers_t *copy = rd_kafka_headers_copy(h);
    for (const char *const *d = DLQ_HEADERS; *d; d++) rd_kafka_header_remove(copy, *d);
    if (rd_kafka_header_cnt(copy) == 0) {
        rd_kafka_headers_destroy(copy);
        return NULL;
    }
    return copy;
}

static int commit_offset(dlq_reader *r, const char *dlq, int32_t partition, int64_t next) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, dlq, partition)->offset = next;
    rd_kafka_resp_err_t e = rd_kafka_commit(r->rk, l, 0);
    if (!e && l->elems[0].err) e = l->elems[0].err;
    rd_kafka_topic_partition_list_destroy(l);
    if (e)
        fprintf(stderr, "millomctl: commit %s [%d]: %s\n", dlq, (int)partition,
                rd_kafka_err2str(e));
    return e ? -1 : 0;
}

typedef struct {
    const dlq_opts *o;
    const char *source, *dlq;
    kafka_producer *producer; /* replay only */
    json_t *rows;
    long total, handled;
    int64_t last_progress_ms;
} walk;

static void progress(walk *w, int final) {
    int64_t now = mono_ms();
    if (!final && now - w->last_progress_ms < PROGRESS_EVERY_MS) return;
    w->last_progress_ms = now;
    if (final)
        fprintf(stderr, "millomctl: %s %ld of %ld message(s) from %s%s%s\n",
                w->o->dry_run ? "would replay" : "replayed", w->handled, w->total, w->dlq,
                w->o->dry_run ? " (dry run: nothing produced or committed) to " : " to ",
                w->source);
    else
        fprintf(stderr, "millomctl: replaying %s: %ld/%ld\n", w->dlq, w->handled, w->total);
}

/* Replays one message: produced, delivered, then its offset committed. 0,
 * or a CTL_EXIT_* code (nothing committed for it). */
static int replay_one(walk *w, dlq_reader *r, const rd_kafka_message_t *m) {
    rd_kafka_resp_err_t e = 0;
    kafka_wait_result res =
        kafka_produce_wait_headers(w->producer, w->source, -1, m->key, m->key_len, m->payload,
                                   m->len, original_headers(m), w->o->timeout_ms, &e);
    if (res != KAFKA_WAIT_DELIVERED) {
        fprintf(stderr,
                "millomctl: %s [%d] @%" PRId64 " not replayed to %s: %s; nothing committed for "
                "it%s\n",
                w->dlq, (int)m->partition, (int64_t)m->offset, w->source,
                res == KAFKA_WAIT_TIMED_OUT ? "no acknowledgement in time" : rd_kafka_err2str(e),
                res == KAFKA_WAIT_TIMED_OUT ? " (it may still arrive: check the topic before "
                                              "replaying again)"
                                            : "");
        return res == KAFKA_WAIT_TIMED_OUT ? CTL_EXIT_UNREACHABLE : exit_code_of(e);
    }
    if (commit_offset(r, w->dlq, m->partition, m->offset + 1) != 0) {
        fprintf(stderr,
                "millomctl: %s [%d] @%" PRId64 " was replayed but its offset not committed: a "
                "new replay would send it again\n",
                w->dlq, (int)m->partition, (int64_t)m->offset);
        return CTL_EXIT_FAILED;
    }
    return 0;
}

/* Reads every pending message (up to --max) once, in partition order per
 * partition; lists, or replays each. 0, or a CTL_EXIT_* code. */
static int walk_pending(walk *w, dlq_reader *r) {
    rd_kafka_topic_partition_list_t *assign = rd_kafka_topic_partition_list_new(r->n_parts);
    for (int i = 0; i < r->n_parts; i++)
        if (!r->parts[i].done)
            rd_kafka_topic_partition_list_add(assign, w->dlq, r->parts[i].partition)->offset =
                r->parts[i].start;
    rd_kafka_resp_err_t e = assign->cnt ? rd_kafka_assign(r->rk, assign) : 0;
    rd_kafka_topic_partition_list_destroy(assign);
    if (e) {
        fprintf(stderr, "millomctl: assign %s: %s\n", w->dlq, rd_kafka_err2str(e));
        return exit_code_of(e);
    }
    int rc = 0;
    int64_t last_message = mono_ms();
    for (;;) {
        int open = 0;
        for (int i = 0; i < r->n_parts; i++) open += !r->parts[i].done;
        if (!open || service_stopping() || (w->o->max > 0 && w->handled >= w->o->max)) break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, 100);
        if (!m) {
            if (mono_ms() - last_message > r->timeout_ms) {
                fprintf(stderr, "millomctl: no message from %s within %ld ms\n", w->dlq,
                        r->timeout_ms);
                rc = CTL_EXIT_UNREACHABLE;
                break;
            }
            continue;
        }
        last_message = mono_ms();
        part_range *p = range_of(r, m->partition);
        if (m->err) {
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (p && m->offset >= p->high) p->done = 1;
            } else {
                fprintf(stderr, "millomctl: %s\n", rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        if (!p || p->done || m->offset >= p->high) { /* arrived after the start */
            if (p) p->done = 1;
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->offset + 1 >= p->high) p->done = 1;
        json_array_append_new(w->rows, message_row(m));
        if (w->producer) rc = replay_one(w, r, m);
        rd_kafka_message_destroy(m);
        if (rc) break;
        w->handled++;
        if (w->o->replay && !w->o->dry_run) progress(w, 0);
    }
    if (!rc && service_stopping() && w->handled < w->total) {
        fprintf(stderr, "millomctl: stopped by a signal; the rest stays pending\n");
        rc = CTL_EXIT_FAILED;
    }
    return rc;
}

static const char *const MESSAGE_COLUMNS[] = {"partition",    "offset", "timestamp",
                                              "key",          "error",  "sourcePartition",
                                              "sourceOffset", "bytes",  NULL};

/* `dlq list` without a topic: one row per DLQ, its messages and those
 * still pending for replay. */
static int list_all(const dlq_opts *o) {
    static const char *const cols[] = {"topic", "dlq", "messages", "pending", NULL};
    json_t *rows = json_array();
    int rc = 0;
    for (const millom_topic *t = millom_topics; t->name && !rc; t++) {
        if (t->kind != TOPIC_KIND_CONSUMED) continue;
        char dlq[256];
        snprintf(dlq, sizeof dlq, "%s" TOPIC_DLQ_SUFFIX, t->name);
        dlq_reader r;
        rc = reader_open(&r, dlq, o->timeout_ms);
        if (!rc) {
            long messages = 0;
            for (int i = 0; i < r.n_parts; i++)
                messages += (long)(r.parts[i].high - r.parts[i].low);
            json_array_append_new(rows, json_pack("{s:s,s:s,s:I,s:I}", "topic", t->name, "dlq", dlq,
                                                  "messages", (json_int_t)messages, "pending",
                                                  (json_int_t)pending_count(&r)));
        }
        reader_close(&r);
    }
    if (!rc) print_rows(stdout, o->format, cols, rows);
    json_decref(rows);
    return rc;
}

int dlq_run(const dlq_opts *o) {
    if (!o->topic) return list_all(o);
    const millom_topic *t = source_topic(o->topic);
    if (!t) {
        fprintf(stderr, "millomctl: %s is not a topic with a dead-letter twin; these are:\n",
                o->topic);
        for (const millom_topic *k = millom_topics; k->name; k++)
            if (k->kind == TOPIC_KIND_CONSUMED) fprintf(stderr, "  %s\n", k->name);
        return CTL_EXIT_USAGE;
    }
    char dlq[256];
    snprintf(dlq, sizeof dlq, "%s" TOPIC_DLQ_SUFFIX, t->name);
    dlq_reader r;
    int rc = reader_open(&r, dlq, o->timeout_ms);
    walk w = {.o = o, .source = t->name, .dlq = dlq, .rows = json_array()};
    if (!rc) {
        w.total = pending_count(&r);
        if (o->max > 0 && w.total > o->max) w.total = o->max;
    }
    if (!rc && o->replay && !o->dry_run) {
        char err[512];
        w.producer = kafka_producer_new("millomctl", 1, err, sizeof err);
        if (!w.producer) {
            fprintf(stderr, "millomctl: %s\n", err);
            rc = CTL_EXIT_FAILED;
        }
    }
    if (!rc) rc = walk_pending(&w, &r);
    /* What was listed or replayed is printed also when a replay stopped. */
    print_rows(stdout, o->format, MESSAGE_COLUMNS, w.rows);
    if (o->replay && (w.total > 0 || !rc)) progress(&w, 1);
    kafka_producer_free(w.producer);
    reader_close(&r);
    json_decref(w.rows);
    return rc;
}
