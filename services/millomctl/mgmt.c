/* `purchases get` and `consents`: api-edge's management API, as an
 * operator's script would call it (GET /mgmt/{operator}/purchases/{transid}
 * and /mgmt/{operator}/consents?subscriberId=), printed as a table, CSV or
 * JSON. The HTTP status becomes the exit code (millomctl.h CTL_EXIT_*). */
#include "millomctl.h"

#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/http_client.h"
#include "shared/plumbing/settings.h"

#define MGMT_TIMEOUT_MS 10000

/* GETs path on api-edge; the parsed JSON answer (status 200) into *out, or
 * the exit code for the failure with the reason on stderr. */
static int mgmt_get(const mgmt_opts *o, const char *path, json_t **out) {
    *out = NULL;
    char url[2048];
    snprintf(url, sizeof url, "%s%s", o->edge, path);
    const char *token = setting_str("MILLOM_MGMT_TOKEN", NULL);
    char auth[4096];
    const char *headers[2] = {NULL, NULL};
    if (token && *token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        headers[0] = auth;
    }
    http_client_global_init();
    http_client *c = http_client_new();
    if (!c) {
        fprintf(stderr, "millomctl: out of memory\n");
        return CTL_EXIT_FAILED;
    }
    http_result r;
    int rc = http_get(c, url, headers, MGMT_TIMEOUT_MS, &r);
    http_client_free(c);
    int exit_code;
    if (rc != 0 || r.status == 0) {
        fprintf(stderr, "millomctl: %s: no answer (%s)\n", url,
                r.timed_out ? "timed out" : r.error);
        exit_code = CTL_EXIT_UNREACHABLE;
    } else if (r.status == 200) {
        json_error_t e;
        *out = json_loadb(r.body ? r.body : "", r.body_len, 0, &e);
        if (!*out) fprintf(stderr, "millomctl: %s: the answer is not JSON: %s\n", url, e.text);
        exit_code = *out ? CTL_EXIT_OK : CTL_EXIT_FAILED;
    } else {
        fprintf(stderr, "millomctl: %s: HTTP %ld %s\n", url, r.status, r.body ? r.body : "");
        exit_code = r.status == 404                      ? CTL_EXIT_NOT_FOUND
                    : r.status == 400                    ? CTL_EXIT_USAGE
                    : r.status >= 502 && r.status <= 504 ? CTL_EXIT_UNREACHABLE
                                                         : CTL_EXIT_FAILED;
    }
    http_result_free(&r);
    return exit_code;
}

/* "&serviceProvider=<sp>" or "?serviceProvider=<sp>" when a provider was
 * named, else "". */
static void provider_query(const mgmt_opts *o, char sep, char *out, size_t len) {
    out[0] = '\0';
    if (!o->provider) return;
    char *esc = http_escape(o->provider);
    if (esc) snprintf(out, len, "%cserviceProvider=%s", sep, esc);
    free(esc);
}

int purchases_get_run(const mgmt_opts *o, const char *transid) {
    char *op = http_escape(o->op), *tid = http_escape(transid), sp[512], path[1024];
    if (!op || !tid) {
        free(op);
        free(tid);
        return CTL_EXIT_FAILED;
    }
    provider_query(o, '?', sp, sizeof sp);
    snprintf(path, sizeof path, "/mgmt/%s/purchases/%s%s", op, tid, sp);
    free(op);
    free(tid);
    json_t *purchase;
    int rc = mgmt_get(o, path, &purchase);
    if (rc == CTL_EXIT_OK) print_object(stdout, o->format, purchase);
    json_decref(purchase);
    return rc;
}

/* A consent's optedOut list [{type, at}] as one cell: "type at, ...". */
static json_t *opt_outs_text(const json_t *list) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return json_string("?");
    size_t i;
    const json_t *o;
    json_array_foreach(list, i, o) {
        const char *type = json_string_value(json_object_get(o, "type"));
        const char *at = json_string_value(json_object_get(o, "at"));
        fprintf(f, "%s%s %s", i ? ", " : "", type ? type : "?", at ? at : "?");
    }
    fclose(f);
    json_t *cell = json_string(buf ? buf : "");
    free(buf);
    return cell;
}

int consents_run(const mgmt_opts *o, const char *subscriber) {
    char *op = http_escape(o->op), *sub = http_escape(subscriber), sp[512], path[1024];
    if (!op || !sub) {
        free(op);
        free(sub);
        return CTL_EXIT_FAILED;
    }
    provider_query(o, '&', sp, sizeof sp);
    snprintf(path, sizeof path, "/mgmt/%s/consents?subscriberId=%s%s", op, sub, sp);
    free(op);
    free(sub);
    json_t *answer;
    int rc = mgmt_get(o, path, &answer);
    if (rc != CTL_EXIT_OK) return rc;
    json_t *consents = json_object_get(answer, "consents");
    json_t *cpids = json_object_get(answer, "cpidRegistrations");
    if (json_array_size(consents) == 0 && json_array_size(cpids) == 0) {
        fprintf(stderr, "millomctl: no consent or CPID registration of %s at operator %s\n",
                subscriber, o->op);
        json_decref(answer);
        return CTL_EXIT_NOT_FOUND;
    }
    if (o->format == OUT_JSON) {
        print_object(stdout, OUT_JSON, answer); /* the API's answer, one line */
    } else {
        /* One row per consent, then one per CPID registration (a table of
         * its own in table format; CSV rows with kind "cpid"). */
        static const char *const consent_cols[] = {
            "kind",      "serviceProvider", "active",    "types",   "language", "transactionId",
            "updatedAt", "registeredAt",    "expiresAt", "expired", "optedOut", NULL};
        json_t *rows = json_array();
        size_t i;
        json_t *c;
        json_array_foreach(consents, i, c) {
            json_t *row = json_deep_copy(c);
            json_object_set_new(row, "kind", json_string("consent"));
            json_object_set_new(row, "optedOut", opt_outs_text(json_object_get(c, "optedOut")));
            json_array_append_new(rows, row);
        }
        json_array_foreach(cpids, i, c) {
            json_t *row = json_deep_copy(c);
            json_object_set_new(row, "kind", json_string("cpid"));
            json_array_append_new(rows, row);
        }
        print_rows(stdout, o->format, consent_cols, rows);
        json_decref(rows);
    }
    json_decref(answer);
    return CTL_EXIT_OK;
}
