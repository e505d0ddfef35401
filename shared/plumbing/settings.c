/* See settings.h. Every reader: a missing or empty variable is its
 * default; anything else must parse completely and be in range. */
#include "shared/plumbing/settings.h"

#include "shared/plumbing/log.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void settings_fail(settings_reader *s, const char *fmt, ...) {
    if (s->err[0]) return; /* keep the first */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
}

bool settings_ok(const settings_reader *s) { return s->err[0] == '\0'; }

const char *settings_error(const settings_reader *s) { return s->err; }

void settings_exit_on_error(const settings_reader *s) {
    if (settings_ok(s)) return;
    log_error("bad setting: %s", s->err);
    exit(1);
}

static const char *value(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static long whole(settings_reader *s, const char *name, long def, long min, long max,
                  const char *what) {
    const char *v = value(name);
    if (!v) return def;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        settings_fail(s, "%s must be %s from %ld to %ld, not \"%.40s\"", name, what, min, max, v);
        return def;
    }
    return n;
}

long settings_long(settings_reader *s, const char *name, long def, long min, long max) {
    return whole(s, name, def, min, max, "a whole number");
}

long settings_ms(settings_reader *s, const char *name, long def, long min, long max) {
    return whole(s, name, def, min, max, "a whole number of milliseconds");
}

long settings_seconds(settings_reader *s, const char *name, long def, long min, long max) {
    return whole(s, name, def, min, max, "a whole number of seconds");
}

double settings_number(settings_reader *s, const char *name, double def, double min, double max) {
    const char *v = value(name);
    if (!v) return def;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(d) || d < min || d > max) {
        settings_fail(s, "%s must be a number from %g to %g, not \"%.40s\"", name, min, max, v);
        return def;
    }
    return d;
}

bool settings_bool(settings_reader *s, const char *name, bool def) {
    const char *v = value(name);
    if (!v) return def;
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) return true;
        if (strcasecmp(v, no[i]) == 0) return false;
    }
    settings_fail(s, "%s must be 1 or 0 (true/false, yes/no, on/off), not \"%.40s\"", name, v);
    return def;
}

const char *settings_str(settings_reader *s, const char *name, const char *def) {
    (void)s;
    const char *v = value(name);
    return v ? v : def;
}

int settings_enum(settings_reader *s, const char *name, const char *const *choices, int def) {
    const char *v = value(name);
    if (!v) return def;
    char list[256] = "";
    size_t used = 0;
    for (int i = 0; choices[i]; i++) {
        if (strcasecmp(v, choices[i]) == 0) return i;
        int n = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", choices[i]);
        if (n > 0 && (size_t)n < sizeof list - used) used += (size_t)n;
    }
    settings_fail(s, "%s must be one of %s, not \"%.40s\"", name, list, v);
    return def;
}

const char *settings_url(settings_reader *s, const char *name, const char *def) {
    const char *v = value(name);
    if (!v) return def;
    const char *host = NULL;
    if (strncasecmp(v, "http://", 7) == 0)
        host = v + 7;
    else if (strncasecmp(v, "https://", 8) == 0)
        host = v + 8;
    if (!host || !*host || *host == '/' || *host == ':' || strpbrk(v, " \t\r\n")) {
        settings_fail(s, "%s must be an http:// or https:// URL with a host, not \"%.80s\"", name,
                      v);
        return def;
    }
    return v;
}

long setting_long(const char *name, long def, long min, long max) {
    settings_reader s = SETTINGS_INIT;
    long v = settings_long(&s, name, def, min, max);
    settings_exit_on_error(&s);
    return v;
}

const char *setting_str(const char *name, const char *def) {
    settings_reader s = SETTINGS_INIT;
    return settings_str(&s, name, def);
}

bool setting_bool(const char *name, bool def) {
    settings_reader s = SETTINGS_INIT;
    bool v = settings_bool(&s, name, def);
    settings_exit_on_error(&s);
    return v;
}

int setting_enum(const char *name, const char *const *choices, int def) {
    settings_reader s = SETTINGS_INIT;
    int v = settings_enum(&s, name, choices, def);
    settings_exit_on_error(&s);
    return v;
}
