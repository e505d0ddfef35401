/* Settings: one validating parser for the environment variables every
 * program reads once at start (MILLOM_*, KAFKA_*).
 *
 * A missing or empty variable gives its default. A bad value is an error
 * that names the variable and what it accepts, e.g.
 *   MILLOM_X must be a whole number from 1 to 100000, not "lots"
 * The reads go through a `settings` that keeps the first error, so a
 * program reads all of its settings into its struct and then checks once:
 *
 *   settings_reader s = SETTINGS_INIT;
 *   cfg->port = (int)settings_long(&s, "MILLOM_EDGE_PORT", 8080, 1, 65535);
 *   ...
 *   settings_exit_on_error(&s);   // message on stderr, exit(1)
 *
 * A shared module that has no caller-provided struct reads at its init with
 * setting_*(), which exit 1 with the same message on a bad value. */
#ifndef MILLOM_SETTINGS_H
#define MILLOM_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char err[384]; /* the first error; "" while every value was good */
} settings_reader;

#define SETTINGS_INIT \
    {                 \
        { 0 }         \
    }

/* A whole number from min to max (both included). */
long settings_long(settings_reader *s, const char *name, long def, long min, long max);
/* A whole number of milliseconds / seconds from min to max: the same as
 * settings_long, with the unit in the message. */
long settings_ms(settings_reader *s, const char *name, long def, long min, long max);
long settings_seconds(settings_reader *s, const char *name, long def, long min, long max);
/* A number (decimals allowed) from min to max. */
double settings_number(settings_reader *s, const char *name, double def, double min, double max);
/* 1/0, true/false, yes/no, on/off (any case). */
bool settings_bool(settings_reader *s, const char *name, bool def);
/* Any non-empty text, else def (which may be NULL). */
const char *settings_str(settings_reader *s, const char *name, const char *def);
/* One of the NULL-terminated choices (any case); its index, else def. */
int settings_enum(settings_reader *s, const char *name, const char *const *choices, int def);
/* An http:// or https:// URL with a host; def may be NULL or "". */
const char *settings_url(settings_reader *s, const char *name, const char *def);

/* Records an error of the caller's own checks (e.g. two settings that do
 * not go together); the first error is kept. */
void settings_fail(settings_reader *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool settings_ok(const settings_reader *s);
/* The first error, "" when none. */
const char *settings_error(const settings_reader *s);
/* When a value was bad: the message on stderr (and the log) and exit(1). */
void settings_exit_on_error(const settings_reader *s);

/* One read at a shared module's init: a bad value exits 1 with the message. */
long setting_long(const char *name, long def, long min, long max);
const char *setting_str(const char *name, const char *def);
bool setting_bool(const char *name, bool def);
int setting_enum(const char *name, const char *const *choices, int def);

#endif
