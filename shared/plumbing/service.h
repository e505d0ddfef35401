/* Process life cycle shared by every program: signals and shutdown. */
#ifndef MILLOM_SERVICE_H
#define MILLOM_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

/* Sets up logging for `name` and SIGINT/SIGTERM handling; ignores SIGPIPE. */
void service_init(const char *name);
/* True once SIGINT or SIGTERM arrived (or service_request_stop was called). */
bool service_stopping(void);
void service_request_stop(void);
/* Sleeps until a stop is requested. */
void service_wait_for_stop(void);
/* From now on SIGHUP (whose default ends the process) means "reload": it
 * makes the returned descriptor readable (an eventfd: read 8 bytes to
 * clear it; several SIGHUPs before a read are one). For one consumer,
 * shared/plumbing/file_watch.c; -1 with errno when the descriptor cannot
 * be made. Later calls return the same descriptor. */
int service_hangup_fd(void);

/* Wall clock, Unix epoch milliseconds. */
int64_t now_ms(void);
/* Monotonic clock, milliseconds. */
int64_t mono_ms(void);

/* Names the calling thread (the first 15 characters; printf-style) as
 * top, perf and gdb show it: "outbox-relay", "lane-3". */
void service_thread_name(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Where a service keeps its files: MILLOM_DATA_DIR, default "var/data". */
const char *service_data_dir(void);

#endif
