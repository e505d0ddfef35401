/* Environment settings and the tenants file. The tenants JSON stays loaded
 * and the structs point into it, so nothing is copied twice. */
#include "shared/contracts/config.h"
#include "shared/plumbing/settings.h"

#include <limits.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Kept for code not yet moved to shared/plumbing/settings.h; both go through it, so
 * a bad number exits 1 naming the variable instead of falling back. */
const char *cfg_str(const char *name, const char *fallback) { return setting_str(name, fallback); }

long cfg_long(const char *name, long fallback) {
    return setting_long(name, fallback, LONG_MIN, LONG_MAX);
}

struct tenants {
    json_t *root;
    tenant_operator *ops;
    size_t n_ops;
    tenant_provider *sps;
    size_t n_sps;
};

/* A NULL-terminated array of the strings in a JSON array (borrowed). */
static const char **string_list(json_t *arr, const char *what, char *err, size_t errlen) {
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    const char **out = calloc(n + 1, sizeof *out);
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = json_string_value(json_array_get(arr, i));
        if (!out[i]) {
            snprintf(err, errlen, "%s[%zu] must be a string", what, i);
            free(out);
            return NULL;
        }
    }
    return out;
}

static const char *req_str(json_t *obj, const char *key, const char *where, char *err,
                           size_t errlen) {
    const char *v = json_string_value(json_object_get(obj, key));
    if (!v || !*v) snprintf(err, errlen, "%s: \"%s\" must be a non-empty string", where, key);
    return v && *v ? v : NULL;
}

static int load_operator(tenant_operator *op, json_t *j, size_t i, char *err, size_t errlen) {
    char where[64];
    snprintf(where, sizeof where, "operators[%zu]", i);
    op->json = j;
    if (!(op->id = req_str(j, "id", where, err, errlen)) ||
        !(op->mccmnc = req_str(j, "mccmnc", where, err, errlen)) ||
        !(op->country_code = req_str(j, "countryCode", where, err, errlen)) ||
        !(op->currency = req_str(j, "currency", where, err, errlen)) ||
        !(op->backend_url = req_str(j, "backendUrl", where, err, errlen)))
        return -1;
    op->name = json_string_value(json_object_get(j, "name"));
    if (!op->name) op->name = op->id;
    json_t *scale = json_object_get(j, "currencyScale");
    op->currency_scale = scale ? (int)json_integer_value(scale) : 2;
    if (op->currency_scale < 0 || op->currency_scale > 6) {
        snprintf(err, errlen, "%s: currencyScale must be 0..6", where);
        return -1;
    }
    /* Calls Millom makes to the operator's backend at once (purchase-
     * executor's lanes and retry thread together); more wait for a slot. */
    json_t *mif = json_object_get(j, "maxInFlight");
    op->max_in_flight = mif ? (int)json_integer_value(mif) : 32;
    if (mif &&
        (!json_is_integer(mif) || json_integer_value(mif) < 1 || json_integer_value(mif) > 10000)) {
        snprintf(err, errlen, "%s: maxInFlight must be an integer from 1 to 10000", where);
        return -1;
    }
    op->default_language = json_string_value(json_object_get(j, "defaultLanguage"));
    if (!op->default_language) op->default_language = "en";
    op->languages = string_list(json_object_get(j, "languages"), "languages", err, errlen);
    return op->languages ? 0 : -1;
}

/* The name of an environment variable: letters, digits and '_', not
 * starting with a digit. */
static int env_name_ok(const char *s) {
    if (!s || !*s || (*s >= '0' && *s <= '9')) return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

/* -1 with a message when obj has a key not in the NULL-terminated list
 * (a misspelt key would otherwise switch a protection off silently). */
static int only_keys(json_t *obj, const char *const *keys, const char *where, char *err,
                     size_t errlen) {
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        size_t k = 0;
        while (keys[k] && strcmp(keys[k], key) != 0) k++;
        if (!keys[k]) {
            snprintf(err, errlen, "%s: unknown field \"%.40s\"", where, key);
            return -1;
        }
    }
    return 0;
}

static int load_webhook_auth(tenant_webhook_auth *out, json_t *a, const char *sp_where, char *err,
                             size_t errlen) {
    static const char *const keys[] = {"tokenUrl", "clientId", "clientSecretEnv", "scope", NULL};
    char where[96];
    snprintf(where, sizeof where, "%s.webhookAuth", sp_where);
    if (!json_is_object(a)) {
        snprintf(err, errlen, "%s must be an object", where);
        return -1;
    }
    if (json_object_get(a, "clientSecret")) {
        snprintf(err, errlen,
                 "%s: the secret never goes in the file: name the environment variable holding "
                 "it in \"clientSecretEnv\"",
                 where);
        return -1;
    }
    if (only_keys(a, keys, where, err, errlen) != 0 ||
        !(out->token_url = req_str(a, "tokenUrl", where, err, errlen)) ||
        !(out->client_id = req_str(a, "clientId", where, err, errlen)) ||
        !(out->client_secret_env = req_str(a, "clientSecretEnv", where, err, errlen)))
        return -1;
    if (strncmp(out->token_url, "http://", 7) != 0 && strncmp(out->token_url, "https://", 8) != 0) {
        snprintf(err, errlen, "%s: tokenUrl must be an http:// or https:// URL", where);
        return -1;
    }
    if (!env_name_ok(out->client_secret_env)) {
        snprintf(err, errlen, "%s: clientSecretEnv must name an environment variable", where);
        return -1;
    }
    json_t *scope = json_object_get(a, "scope");
    if (scope && !json_is_string(scope)) {
        snprintf(err, errlen, "%s: scope must be a string", where);
        return -1;
    }
    out->scope = json_string_value(scope);
    return 0;
}

static int load_webhook_secrets(tenant_provider *sp, json_t *arr, const char *sp_where, char *err,
                                size_t errlen) {
    static const char *const keys[] = {"env", NULL};
    size_t n = json_array_size(arr);
    if (!json_is_array(arr) || n < 1 || n > TENANT_WEBHOOK_SECRETS_MAX) {
        snprintf(err, errlen,
                 "%s.webhookSecrets must be an array of 1 to %d {\"env\": NAME} (two while "
                 "rotating)",
                 sp_where, TENANT_WEBHOOK_SECRETS_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char where[96];
        snprintf(where, sizeof where, "%s.webhookSecrets[%zu]", sp_where, i);
        json_t *e = json_array_get(arr, i);
        if (!json_is_object(e)) {
            snprintf(err, errlen, "%s must be {\"env\": NAME}", where);
            return -1;
        }
        if (only_keys(e, keys, where, err, errlen) != 0) return -1;
        const char *env = json_string_value(json_object_get(e, "env"));
        if (!env_name_ok(env) || strncmp(env, "whsec_", 6) == 0) {
            snprintf(err, errlen,
                     "%s: env must name the environment variable holding the secret (whsec_...); "
                     "the secret never goes in the file",
                     where);
            return -1;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(sp->webhook_secret_envs[k], env) == 0) {
                snprintf(err, errlen, "%s: %s is named twice", where, env);
                return -1;
            }
        sp->webhook_secret_envs[i] = env;
    }
    return 0;
}

static int load_provider(tenant_provider *sp, json_t *j, size_t i, char *err, size_t errlen) {
    char where[64];
    snprintf(where, sizeof where, "serviceProviders[%zu]", i);
    sp->json = j;
    if (!(sp->id = req_str(j, "id", where, err, errlen))) return -1;
    sp->name = json_string_value(json_object_get(j, "name"));
    if (!sp->name) sp->name = sp->id;
    json_t *auth = json_object_get(j, "webhookAuth");
    if (auth && !json_is_null(auth) &&
        load_webhook_auth(&sp->webhook_auth, auth, where, err, errlen) != 0)
        return -1;
    json_t *secrets = json_object_get(j, "webhookSecrets");
    if (secrets && !json_is_null(secrets) &&
        load_webhook_secrets(sp, secrets, where, err, errlen) != 0)
        return -1;
    json_t *callbacks = json_object_get(j, "purchaseCallbacks");
    const char *which = json_string_value(callbacks);
    if (callbacks && !json_is_null(callbacks) &&
        (!which || (strcmp(which, "processing") != 0 && strcmp(which, "all") != 0))) {
        snprintf(err, errlen, "%s.purchaseCallbacks: must be \"processing\" or \"all\"", where);
        return -1;
    }
    sp->callbacks_for_answered = which && strcmp(which, "all") == 0;
    sp->operators = string_list(json_object_get(j, "operators"), "operators", err, errlen);
    return sp->operators ? 0 : -1;
}

/* Validates a parsed document and takes ownership of root (freed on
 * failure). name names it in messages. */
static tenants *tenants_from_root(json_t *root, const char *name, char *err, size_t errlen) {
    tenants *t = calloc(1, sizeof *t);
    json_t *ops = json_object_get(root, "operators");
    json_t *sps = json_object_get(root, "serviceProviders");
    if (!t || !json_is_array(ops) || !json_is_array(sps)) {
        snprintf(err, errlen, "%s: needs arrays \"operators\" and \"serviceProviders\"", name);
        free(t);
        json_decref(root);
        return NULL;
    }
    t->root = root;
    t->ops = calloc(json_array_size(ops) + 1, sizeof *t->ops);
    t->sps = calloc(json_array_size(sps) + 1, sizeof *t->sps);
    if (!t->ops || !t->sps) goto fail;
    for (size_t i = 0; i < json_array_size(ops); i++, t->n_ops++)
        if (load_operator(&t->ops[i], json_array_get(ops, i), i, err, errlen) != 0) goto fail;
    for (size_t i = 0; i < json_array_size(sps); i++, t->n_sps++)
        if (load_provider(&t->sps[i], json_array_get(sps, i), i, err, errlen) != 0) goto fail;
    return t;
fail:
    tenants_free(t);
    return NULL;
}

tenants *tenants_load(const char *path, char *err, size_t errlen) {
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
        return NULL;
    }
    return tenants_from_root(root, path, err, errlen);
}

tenants *tenants_parse(const char *text, size_t len, const char *name, char *err, size_t errlen) {
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s:%d: %s", name, jerr.line, jerr.text);
        return NULL;
    }
    return tenants_from_root(root, name, err, errlen);
}

const char *tenants_default_path(void) {
    return setting_str("MILLOM_TENANTS", "config/tenants.sandbox.json");
}

tenants *tenants_load_default(char *err, size_t errlen) {
    return tenants_load(tenants_default_path(), err, errlen);
}

void tenants_free(tenants *t) {
    if (!t) return;
    for (size_t i = 0; t->ops && i <= t->n_ops; i++) free((void *)t->ops[i].languages);
    for (size_t i = 0; t->sps && i <= t->n_sps; i++) free((void *)t->sps[i].operators);
    free(t->ops);
    free(t->sps);
    json_decref(t->root);
    free(t);
}

const tenant_operator *tenants_operator(const tenants *t, const char *id) {
    for (size_t i = 0; id && i < t->n_ops; i++)
        if (strcmp(t->ops[i].id, id) == 0) return &t->ops[i];
    return NULL;
}

const tenant_operator *tenants_operator_for_msisdn(const tenants *t, const char *msisdn) {
    const tenant_operator *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; msisdn && i < t->n_ops; i++) {
        size_t n = strlen(t->ops[i].country_code);
        if (n > best_len && strncmp(msisdn, t->ops[i].country_code, n) == 0) {
            best = &t->ops[i];
            best_len = n;
        }
    }
    return best;
}

const tenant_operator *tenants_operator_by_mccmnc(const tenants *t, const char *mccmnc) {
    for (size_t i = 0; mccmnc && i < t->n_ops; i++)
        if (strcmp(t->ops[i].mccmnc, mccmnc) == 0) return &t->ops[i];
    return NULL;
}

const tenant_provider *tenants_provider(const tenants *t, const char *id) {
    for (size_t i = 0; id && i < t->n_sps; i++)
        if (strcmp(t->sps[i].id, id) == 0) return &t->sps[i];
    return NULL;
}

bool tenants_provider_uses(const tenant_provider *p, const char *operator_id) {
    for (size_t i = 0; p->operators[i]; i++)
        if (strcmp(p->operators[i], operator_id) == 0) return true;
    return false;
}

json_t *tenants_json(const tenants *t) { return t->root; }

size_t tenants_operator_count(const tenants *t) { return t->n_ops; }

const tenant_operator *tenants_operator_at(const tenants *t, size_t i) {
    return i < t->n_ops ? &t->ops[i] : NULL;
}

const char *tenant_operator_language(const tenant_operator *op, const char *wanted) {
    for (size_t i = 0; wanted && op->languages[i]; i++)
        if (strcmp(op->languages[i], wanted) == 0) return op->languages[i];
    return op->default_language;
}
