/* `link`: prints a signed link (shared/contracts/signed_link.h) for tests, demos and
 * support: the same URL notifier would put into a rich notification.
 *
 *   millomctl link --path /rnf/{sp}/{op}/{cpid}/{offers|ping|shop|purchasePlan}
 *                  [--base http://host:port] [--ttl SECONDS] [--param name=value]...
 *
 * The key is MILLOM_LINK_KEY as shared/contracts/keys.h resolves it for the profile
 * (in the secure profile: the stack's key file in MILLOM_KEY_DIR), like api-edge's. */
#include "millomctl.h"

#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/service.h"
#include "shared/contracts/signed_link.h"

int link_run(const link_opts *o) {
    signed_link_param params[SIGNED_LINK_MAX_PARAMS];
    char *copies[SIGNED_LINK_MAX_PARAMS];
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < o->n_params; i++) {
        const char *eq = strchr(o->params[i], '=');
        if (!eq || eq == o->params[i] || n >= SIGNED_LINK_MAX_PARAMS) {
            fprintf(stderr, "millomctl: bad --param '%s' (want name=value)\n", o->params[i]);
            rc = 2;
            break;
        }
        copies[n] = strdup(o->params[i]);
        if (!copies[n]) {
            rc = 1;
            break;
        }
        copies[n][eq - o->params[i]] = '\0';
        params[n].name = copies[n];
        params[n].value = copies[n] + (eq - o->params[i]) + 1;
        n++;
    }
    if (rc == 0) {
        char *url =
            signed_link_make(o->base ? o->base : "", o->path, params, n, o->ttl_s, now_ms());
        if (!url) {
            fprintf(stderr, "millomctl: cannot sign that link (path must start with '/'; "
                            "no uuid/expirySeconds/signature or duplicate parameters)\n");
            rc = 2;
        } else {
            printf("%s\n", url);
            free(url);
        }
    }
    for (size_t i = 0; i < n; i++) free(copies[i]);
    return rc;
}
