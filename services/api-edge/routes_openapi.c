/* GET /openapi/millom-extensions.yaml: the OpenAPI file of Millom-C's own
 * endpoints (schemas/openapi/millom-extensions.yaml), read once at the
 * start from MILLOM_OPENAPI_FILE (default: that path, relative to the
 * working directory, as the tenants file's default is: the repository in
 * `make run`, /app in the Docker image). A file that could not be read is
 * logged at the start and answered 404 with the reason. Public. */
#include "edge.h"
#include "shared/plumbing/errors.h"
#include "shared/plumbing/files.h"
#include "shared/plumbing/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Far above the file's size; a larger one is a wrong file. */
#define OPENAPI_MAX_BYTES (4u << 20)

void edge_openapi_load(api_edge *e, const char *path) {
    e->openapi_path = path;
    e->openapi = files_read_all(path, OPENAPI_MAX_BYTES, &e->openapi_len);
    if (!e->openapi) {
        e->openapi_errno = errno ? errno : EIO;
        log_warn("openapi: cannot read %s (%s): GET /openapi/millom-extensions.yaml answers 404",
                 path, strerror(e->openapi_errno));
    }
}

void edge_openapi_free(api_edge *e) {
    free(e->openapi);
    e->openapi = NULL;
}

void routes_openapi(api_edge *e, http_request *req, const edge_match *m) {
    (void)m;
    if (!e->openapi) {
        http_respond_error(req, CAUSE_NOT_FOUND, "the OpenAPI file %s could not be read: %s",
                           e->openapi_path, strerror(e->openapi_errno));
        return;
    }
    http_respond(req, 200, "application/yaml", e->openapi, e->openapi_len);
}
