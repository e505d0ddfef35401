/* Configuration: MILLOM_* environment variables and the tenants file
 * (MILLOM_TENANTS, default config/tenants.sandbox.json). Read-only input. */
#ifndef MILLOM_CONFIG_H
#define MILLOM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

/* Old readers, for code not yet moved: use shared/plumbing/settings.h, which checks
 * ranges. cfg_long exits 1 on a value that is no whole number. */
const char *cfg_str(const char *name, const char *fallback);
long cfg_long(const char *name, long fallback);

typedef struct {
    const char *id;           /* path segment, e.g. "tp" */
    const char *name;         /* "Telenor Pakistan" */
    const char *mccmnc;       /* "41006" */
    const char *country_code; /* "92" */
    const char *currency;     /* "PKR" */
    int currency_scale;       /* digits after the decimal point */
    const char *backend_url;  /* base URL of the operator backend API */
    const char *default_language;
    const char *const *languages; /* NULL-terminated */
    int max_in_flight;            /* "maxInFlight": calls at once to its backend, 32 */
    json_t *json;                 /* the whole entry, for later fields */
} tenant_operator;

/* A provider's "webhookAuth": OAuth 2.0 client credentials Millom uses
 * for its webhooks to the provider (rich-notification-api.yaml's
 * serviceProviderAuthentication): {"tokenUrl", "clientId",
 * "clientSecretEnv" (the name of the environment variable holding the
 * secret: the file never holds it), "scope" (optional)}. */
typedef struct {
    const char *token_url; /* NULL: the provider has no webhookAuth */
    const char *client_id;
    const char *client_secret_env;
    const char *scope; /* NULL when absent */
} tenant_webhook_auth;

/* Signing secrets of a provider's webhooks at once (a rotation). */
#define TENANT_WEBHOOK_SECRETS_MAX 2

typedef struct {
    const char *id; /* serviceProvider path segment */
    const char *name;
    const char *const *operators; /* NULL-terminated; operators it may use */
    tenant_webhook_auth webhook_auth;
    /* "webhookSecrets": [{"env": NAME}, ...]: the names of the environment
     * variables holding its Standard Webhooks secrets ("whsec_...", see
     * shared/contracts/webhook_signature.h), one, or two while rotating;
     * NULL-terminated, empty when its webhooks are not signed. */
    const char *webhook_secret_envs[TENANT_WEBHOOK_SECRETS_MAX + 1];
    /* "purchaseCallbacks": "processing" (the default) posts a purchase's
     * outcome to callbackUrl only when its purchasePlan was answered 202
     * "processing", as the standard API promises; "all" also when the
     * answer (200 or an error) already carried it. True for "all". */
    bool callbacks_for_answered;
    json_t *json;
} tenant_provider;

typedef struct tenants tenants;

/* Loads and validates the tenants file; NULL with a message in err. */
tenants *tenants_load(const char *path, char *err, size_t errlen);
/* The same from the bytes of a tenants file (len bytes, no terminator
 * needed); name (a path) names it in messages. */
tenants *tenants_parse(const char *text, size_t len, const char *name, char *err, size_t errlen);
/* The file named by MILLOM_TENANTS, or the sandbox default. */
const char *tenants_default_path(void);
/* Loads the file named by MILLOM_TENANTS (or the sandbox default). */
tenants *tenants_load_default(char *err, size_t errlen);
void tenants_free(tenants *t);
/* The whole tenants document (for top-level arrays such as "clients");
 * owned by t. */
json_t *tenants_json(const tenants *t);

const tenant_operator *tenants_operator(const tenants *t, const char *id);
/* The operator whose country code prefixes the MSISDN (longest match). */
const tenant_operator *tenants_operator_for_msisdn(const tenants *t, const char *msisdn);
const tenant_operator *tenants_operator_by_mccmnc(const tenants *t, const char *mccmnc);
const tenant_provider *tenants_provider(const tenants *t, const char *id);
bool tenants_provider_uses(const tenant_provider *p, const char *operator_id);
size_t tenants_operator_count(const tenants *t);
const tenant_operator *tenants_operator_at(const tenants *t, size_t i);

/* The language to use for an operator: `wanted` if the operator supports
 * it, otherwise its default language. */
const char *tenant_operator_language(const tenant_operator *op, const char *wanted);

#endif
