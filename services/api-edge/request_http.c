/* See request_http.h. */
#include "request_http.h"
#include "routes.h"
#include "shared/plumbing/errors.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Splits a host[:port] text into its name (brackets kept for IPv6) and
 * port ("" when absent). -1 if malformed: empty name, an unclosed
 * bracket, a port that is not 1 to 5 digits, or bytes that cannot be in a
 * host name. */
static int split_host(const char *s, size_t n, char *name, size_t namelen, char *port,
                      size_t portlen) {
    size_t name_n;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) return -1;
        name_n = (size_t)(close - s) + 1;
    } else {
        const char *colon = memchr(s, ':', n);
        name_n = colon ? (size_t)(colon - s) : n;
    }
    if (name_n == 0 || name_n >= namelen) return -1;
    for (size_t i = 0; i < name_n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != '_' && c != '[' && c != ']' && c != ':')
            return -1;
    }
    memcpy(name, s, name_n);
    name[name_n] = '\0';
    if (name_n > 1 && name[name_n - 1] == '.') name[name_n - 1] = '\0'; /* FQDN dot */
    port[0] = '\0';
    if (name_n == n) return 0;
    if (s[name_n] != ':') return -1;
    size_t port_n = n - name_n - 1;
    if (port_n == 0 || port_n > 5 || port_n >= portlen) return -1;
    for (size_t i = 0; i < port_n; i++)
        if (!isdigit((unsigned char)s[name_n + 1 + i])) return -1;
    memcpy(port, s + name_n + 1, port_n);
    port[port_n] = '\0';
    return 0;
}

int edge_host_allowed(const char *allow_list, const char *host) {
    char name[256], port[8];
    if (!host || !allow_list ||
        split_host(host, strlen(host), name, sizeof name, port, sizeof port) != 0)
        return 0;
    const char *p = allow_list;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        size_t n = strcspn(p, ",");
        while (n > 0 && p[n - 1] == ' ') n--;
        char want_name[256], want_port[8];
        if (n == 1 && p[0] == '*') return 1;
        if (n > 0 &&
            split_host(p, n, want_name, sizeof want_name, want_port, sizeof want_port) == 0 &&
            strcasecmp(want_name, name) == 0 && (!want_port[0] || strcmp(want_port, port) == 0))
            return 1;
        p += strcspn(p, ",");
    }
    return 0;
}

int edge_content_type_is_json(const char *ct) {
    if (!ct) return 0;
    while (*ct == ' ' || *ct == '\t') ct++;
    static const char json_type[] = "application/json";
    if (strncasecmp(ct, json_type, sizeof json_type - 1) != 0) return 0;
    const char *p = ct + sizeof json_type - 1;
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '\0') return 1;
    if (*p != ';') return 0; /* application/jsonx, application/json+... */
    /* Parameters: only a charset other than UTF-8 is refused. */
    const char *cs = strcasestr(p, "charset=");
    if (!cs) return 1;
    cs += 8;
    if (*cs == '"') cs++;
    return strncasecmp(cs, "utf-8", 5) == 0 &&
           (cs[5] == '\0' || cs[5] == '"' || cs[5] == ';' || cs[5] == ' ');
}

const char *edge_json_body_check(const char *content_type, const char *body, size_t len, char *msg,
                                 size_t msglen) {
    if (!edge_content_type_is_json(content_type)) {
        snprintf(msg, msglen, "the body must be Content-Type: application/json");
        return CAUSE_UNSUPPORTED_MEDIA_TYPE;
    }
    if (body && len && memchr(body, '\0', len)) {
        snprintf(msg, msglen, "the body contains a NUL byte");
        return CAUSE_BAD_REQUEST;
    }
    return NULL;
}

int edge_body_must_be_json(const char *method, const char *path) {
    edge_match m;
    edge_route_find(method, path, &m);
    return edge_match_body_is_json(method, &m);
}
