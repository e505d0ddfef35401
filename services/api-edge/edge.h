/* What every api-edge route needs: tenants, the Kafka producer, the reply
 * reader and settings. One instance per process, built in main.c. */
#ifndef API_EDGE_EDGE_H
#define API_EDGE_EDGE_H

#include <stdio.h>

#include "shared/contracts/config.h"
#include "shared/plumbing/http_server.h"
#include "shared/plumbing/kafka.h"
#include "shared/patterns/rpc.h"
#include "request_purchase.h"
#include "request_std.h"
#include "routes.h"
#include "tenants_reload.h"
#include "millom/v1/subscriber.pb-c.h"

typedef struct api_edge {
    snapshot_cell *config; /* the tenants file in force: edge_config versions (tenants_reload.h) */
    kafka_producer *producer;
    rpc_client *rpc;
    int query_deadline_ms;     /* MILLOM_QUERY_DEADLINE_MS, default 3000 */
    int purchase_deadline_ms;  /* MILLOM_PURCHASE_DEADLINE_MS, default 8000 */
    struct edge_auth *auth;    /* OAuth clients, JWT key, rate limits (auth.h) */
    const char *allowed_hosts; /* MILLOM_ALLOWED_HOSTS (request_http.h) */
    /* MILLOM_OPENAPI_FILE, read at the start (routes_openapi.c): NULL
     * when it could not be read, openapi_errno saying why. */
    const char *openapi_path;
    char *openapi;
    size_t openapi_len;
    int openapi_errno;
    long bulk_max_items;  /* MILLOM_NOTIFY_BULK_MAX_ITEMS, default 10000 */
    long bulk_max_body;   /* MILLOM_NOTIFY_BULK_MAX_BODY, default 4 MiB */
    int bulk_deadline_ms; /* MILLOM_NOTIFY_BULK_DEADLINE_MS, default 30000 */
} api_edge;

/* The version of the tenants file a request is served with (m->config). */
static inline const edge_config *edge_config_of(const edge_match *m) {
    return (const edge_config *)snapshot_value(m->config);
}
static inline const tenants *edge_tenants(const edge_match *m) {
    return edge_config_of(m)->tenants;
}

/* Entry point for every HTTP request (router.c): every endpoint is a row
 * of the route table (routes.c); the handlers below get their row and
 * parameters in m. */
void edge_route(void *app, http_request *req);

/* Authentication and authorization of the request's row before dispatch
 * (auth.c): 1 if it answered (401, 403, 429), 0 to go on. */
int edge_auth_request(api_edge *e, http_request *req, const edge_match *m);
/* GET /openapi/millom-extensions.yaml (routes_openapi.c): the file read
 * once by edge_openapi_load at the start, freed by edge_openapi_free. */
void routes_openapi(api_edge *e, http_request *req, const edge_match *m);
void edge_openapi_load(api_edge *e, const char *path);
void edge_openapi_free(api_edge *e);

/* POST /oauth/v1/token (routes_oauth.c). */
void routes_oauth_token(api_edge *e, http_request *req, const edge_match *m);

/* GET /std/{serviceProvider}[/{operator}]/{subscriberId}/{accountInfo,
 * balance,upsellOffer} (routes_std.c). */
void routes_std(api_edge *e, http_request *req, const edge_match *m);
/* The standard API's path of a /std row: its parameters and action. */
void edge_std_path(const edge_match *m, std_path *out);

/* Relays the responder's Reply to a deferred request, or 503 when the
 * deadline passed first (relay.c). `arg` is the http_request. */
void edge_relay_reply(void *arg, const Millom__V1__Reply *reply);
/* Registers the relay's metrics (millom_edge_deadline_exceeded_total) so
 * that they are on /metrics at 0 from start-up: a counter that appears only
 * at its first increase gives rate() and increase() nothing to compare and
 * leaves the dashboard's panel empty. Idempotent (relay.c). */
void edge_relay_metrics_init(void);

/* How to serialize one protobuf message type. */
typedef struct {
    size_t (*packed_size)(const void *msg);
    size_t (*pack)(const void *msg, uint8_t *out);
} edge_codec;

/* Registers an rpc call, defers req, and produces msg (whose RequestMeta
 * is `meta`, filled here) to topic with key. The answer reaches on_reply
 * (edge_relay_reply for a plain relay, with arg = req). On failure answers
 * 503 itself. */
void edge_send_request(api_edge *e, http_request *req, const char *topic, const char *key,
                       int deadline_ms, const edge_codec *codec, void *msg,
                       Millom__V1__RequestMeta *meta, rpc_reply_fn on_reply, void *arg);
/* Packs msg and produces it to topic with key, nobody waiting for an
 * answer (edge_send_request's produce). 0, or -1 (out of memory, or the
 * producer refused it). */
int edge_produce(api_edge *e, const char *topic, const char *key, const edge_codec *codec,
                 const void *msg);

/* Serializers of the request messages api-edge sends (relay.c). */
extern const edge_codec edge_query_codec, edge_purchase_codec, edge_callback_codec,
    edge_lookup_codec, edge_settlement_query_codec, edge_consent_codec,
    edge_cpid_registration_codec, edge_consent_query_codec, edge_subscriber_event_codec,
    edge_topup_codec;

/* /std/{sp}[/{op}]/{sub}/purchasePlan (routes_purchase.c). */
void routes_purchase(api_edge *e, http_request *req, const edge_match *m);
/* Sends a validated purchase as a PurchaseCommand on `channel` ("api",
 * "rnf") and relays the executor's answer (202 "processing" past the
 * deadline). Shared by /std/.../purchasePlan and the signed links. */
void routes_purchase_send(api_edge *e, http_request *req, const std_request *r,
                          const activation_request *a, const char *channel);
/* GET /std/{sp}[/{op}]/{sub}/purchasePlan/{transid}: the provider's own
 * purchase status, an extension (routes_purchase.c). */
void routes_purchase_status(api_edge *e, http_request *req, const edge_match *m);
/* GET /std/{serviceProvider}[/{operator}]/{subscriberId}/eligibility/{planId}
 * [?fundSource=]: a purchase's checks without the purchase, as a dry-run
 * PurchaseCommand (routes_eligibility.c). */
void routes_eligibility(api_edge *e, http_request *req, const edge_match *m);
/* Sends a validated read (r->path.action) as a Query to offer-resolver;
 * the Reply reaches on_reply(arg) (routes_std.c). */
void routes_std_send_query(api_edge *e, http_request *req, const std_request *r,
                           rpc_reply_fn on_reply, void *arg);
/* GET /rnf/{serviceProvider}/{operator}/{cpid}/{offers|ping|purchasePlan|shop},
 * authorized by a signed link (routes_rnf.c); the row's action: */
typedef enum { RNF_OFFERS, RNF_PING, RNF_PURCHASE, RNF_SHOP, RNF_UNSUBSCRIBE } rnf_action;
void routes_rnf(api_edge *e, http_request *req, const edge_match *m);
/* The headers of every answer under /rnf/ (routes_rnf.c): name, value, ..., NULL. */
extern const char *const edge_rnf_headers[];
/* Writes s to f with HTML's special characters escaped (routes_rnf.c). */
void edge_html_text(FILE *f, const char *s);
/* The Top-up API (routes_topup.c): POST /v1/{serviceProvider}/topup,
 * GET /v1/{serviceProvider}/topup/{topupId} and the donor's page
 * GET|POST /topup/{serviceProvider}/{topupId} (a signed link). */
void routes_topup_request(api_edge *e, http_request *req, const edge_match *m);
void routes_topup_status(api_edge *e, http_request *req, const edge_match *m);
void routes_topup_page(api_edge *e, http_request *req, const edge_match *m);
/* Reads MILLOM_TOPUP_LINK_TTL_S and MILLOM_TOPUP_AMOUNTS (once, at the
 * start; a bad value exits 1). */
void edge_topup_init(void);
/* Operators' activation callbacks (routes_callbacks.c); the row's action: */
enum { CALLBACK_BACKEND, CALLBACK_MILLOM };
void routes_callbacks(api_edge *e, http_request *req, const edge_match *m);
/* GET /mgmt/{operator}/purchases?... and /mgmt/{operator}/purchases/{transid}
 * (routes_mgmt.c). */
void routes_mgmt_purchases(api_edge *e, http_request *req, const edge_match *m);
void routes_mgmt_purchase(api_edge *e, http_request *req, const edge_match *m);
/* A management API time bound: "2026-11-28", "2026-11-28T17:00:00Z" or
 * epoch milliseconds; -1 if none of these. A bare date means its start
 * (from) or, with end_of_day, its last millisecond (to). */
int64_t mgmt_parse_time(const char *s, int end_of_day);
/* GET /mgmt/{operator}/settlements and offer-performance; the row's action
 * is the SettlementQueryKind (routes_settlement.c). */
void routes_settlement(api_edge *e, http_request *req, const edge_match *m);

/* GET /cpid?app= and POST /{sp}/{op}/registerCpid?app= (routes_cpid.c). */
void routes_cpid_get(api_edge *e, http_request *req, const edge_match *m);
void routes_cpid_register(api_edge *e, http_request *req, const edge_match *m);
/* 1 if the textual IPv4/IPv6 address is inside the CIDR ("10.0.0.0/8",
 * "::1/128", or a bare address); IPv4-mapped IPv6 peers count as IPv4. */
int edge_ip_in_cidr(const char *ip, const char *cidr);
/* The operator whose "cpidClientCidrs" contain ip, or NULL. */
const tenant_operator *edge_cpid_operator_for_ip(const tenants *t, const char *ip);
/* The trusted header carrying the MSISDN: "msisdnHeader", default X-MSISDN. */
const char *edge_msisdn_header(const tenant_operator *op);

/* POST /std/{sp}/{subscriberId}/register (routes_register.c). */
void routes_register(api_edge *e, http_request *req, const edge_match *m);
#define REGISTER_MAX_TYPES 9
typedef struct {
    char transaction_id[129];
    char types[REGISTER_MAX_TYPES][32]; /* NotificationType values, no duplicates */
    size_t n_types;
} register_body;
/* Parses {transactionId, types[]}; -1 with msg naming the field. */
int register_body_parse(const char *body, size_t len, register_body *out, char *msg, size_t msglen);

/* GET /mgmt/{operator}/consents?subscriberId=[&serviceProvider=]
 * (routes_consents.c). */
void routes_consents(api_edge *e, http_request *req, const edge_match *m);

/* POST /notify/{operator}/v1/single (routes_notify.c). */
void routes_notify(api_edge *e, http_request *req, const edge_match *m);
typedef struct {
    char transaction_id[129];
    char type[32];     /* NotificationType */
    char plan_id[129]; /* planDetails.planId, "" if absent */
    int64_t expiry_ms; /* planDetails.expiry, 0 if absent */
    char language[16]; /* messages[0].language, "" if absent */
} notify_body;
/* Parses and validates a NotifyRequest; -1 with msg naming the field. */
int notify_body_parse(const char *body, size_t len, notify_body *out, char *msg, size_t msglen);
/* The same for a parsed body (other fields of the object are ignored). */
int notify_body_check(const json_t *body, notify_body *out, char *msg, size_t msglen);
/* 1 if type is one of the spec's NotificationType values. */
int notify_type_known(const char *type);

/* One notification as the single endpoint takes it (its query's idValue,
 * idType and override, and its body), checked for operator op: shared by
 * POST /notify/{op}/v1/single and /bulk, so both give one item the same
 * verdict. */
typedef struct {
    notify_body body;
    char msisdn[16]; /* resolved: the number, or the CPID's number */
    int skip_quota;  /* override=true */
} notify_item;
/* Why an item was refused before it reached notifier. */
typedef struct {
    int status;             /* 400, 404, 409 */
    const char *error_type; /* the spec's ErrorResponse.errorType; NULL: 400 ErrorDocument */
    char message[256];      /* names the field */
} notify_refusal;
/* 0 with out filled, or -1 with why (override: NULL, "true" or "false"). */
int notify_item_check(const tenant_operator *op, const char *id_value, const char *id_type,
                      const char *override, const json_t *body, notify_item *out,
                      notify_refusal *why);
/* The SubscriberEvent of a checked item (pointing into it and op: both
 * must outlive the event); its meta is filled by edge_send_request or
 * rpc_call_begin. */
typedef struct {
    Millom__V1__SubscriberEvent ev;
    Millom__V1__SubscriberRef sub;
    Millom__V1__RequestMeta meta;
} notify_event;
void notify_item_event(const tenant_operator *op, notify_item *it, notify_event *out);

/* POST /notify/{operator}/v1/bulk: up to MILLOM_NOTIFY_BULK_MAX_ITEMS
 * notifications, one verdict each (routes_notify_bulk.c). */
void routes_notify_bulk(api_edge *e, http_request *req, const edge_match *m);
/* The body limit of a bulk request (MILLOM_NOTIFY_BULK_MAX_BODY) for
 * http_server_opts.max_body_for; 0 for every other request. */
size_t notify_bulk_max_body(void *app, const char *method, const char *path);
/* RFC 3339 date-time to epoch ms; -1 if not one. */
int64_t notify_parse_time(const char *s);

#endif
