/* What sp-sandbox, playing a provider, checks on Millom's webhooks, and
 * the tokens it issues for them (README.md in this folder):
 *   - a bearer token it issued itself from POST /oauth/token to its one
 *     client (MILLOM_SP_OAUTH_CLIENT_ID/_SECRET), not expired and not
 *     revoked, when a client secret is configured;
 *   - a Standard Webhooks signature by one of its secrets
 *     (MILLOM_SP_WEBHOOK_SECRETS) with a timestamp within 5 minutes, when
 *     secrets are configured (shared/contracts/webhook_signature.h).
 * Issued tokens live in memory (a restart forgets them, as a provider's
 * revocation would), at most TOKENS_MAX, the oldest replaced first. */
#include "sp_sandbox.h"

#include "shared/plumbing/crypto.h"
#include "shared/plumbing/settings.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TOKENS_MAX 256
#define TOKEN_BYTES 32
#define TOKEN_LEN 43 /* base64url of TOKEN_BYTES */

typedef struct {
    char token[TOKEN_LEN + 1]; /* "" when free */
    int64_t expires_ms;
} issued_token;

struct sp_auth {
    sp_auth_cfg cfg; /* immutable after sp_auth_new */
    pthread_mutex_t mu;
    issued_token tokens[TOKENS_MAX]; /* under mu */
    size_t next;                     /* the slot the next token takes */
};

int sp_auth_parse_secrets(const char *list, sp_auth_cfg *cfg, char *err, size_t errlen) {
    cfg->n_keys = 0;
    const char *p = list ? list : "";
    while (*p) {
        while (isspace((unsigned char)*p) || *p == ',') p++;
        size_t n = 0;
        while (p[n] && !isspace((unsigned char)p[n]) && p[n] != ',') n++;
        if (n == 0) break;
        char secret[160], why[160];
        if (cfg->n_keys == WEBHOOK_KEYS_MAX || n >= sizeof secret) {
            snprintf(err, errlen, "one or two whsec_ secrets, space-separated");
            goto fail;
        }
        memcpy(secret, p, n);
        secret[n] = '\0';
        int rc = webhook_key_parse(secret, &cfg->keys[cfg->n_keys], why, sizeof why);
        OPENSSL_cleanse(secret, sizeof secret);
        if (rc != 0) {
            snprintf(err, errlen, "%s", why);
            goto fail;
        }
        cfg->n_keys++;
        p += n;
    }
    return 0;
fail:
    for (size_t i = 0; i < WEBHOOK_KEYS_MAX; i++) webhook_key_clear(&cfg->keys[i]);
    cfg->n_keys = 0;
    return -1;
}

void sp_auth_cfg_from_env(settings_reader *s, sp_auth_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    const char *secrets = settings_str(s, "MILLOM_SP_WEBHOOK_SECRETS", "");
    char err[200];
    if (sp_auth_parse_secrets(secrets, cfg, err, sizeof err) != 0)
        settings_fail(s, "MILLOM_SP_WEBHOOK_SECRETS must be one or two whsec_ secrets: %s", err);
    const char *id = settings_str(s, "MILLOM_SP_OAUTH_CLIENT_ID", SP_DEFAULT_CLIENT_ID);
    if (strlen(id) >= sizeof cfg->client_id)
        settings_fail(s, "MILLOM_SP_OAUTH_CLIENT_ID must be shorter than %zu characters",
                      sizeof cfg->client_id);
    else
        snprintf(cfg->client_id, sizeof cfg->client_id, "%s", id);
    const char *secret = settings_str(s, "MILLOM_SP_OAUTH_CLIENT_SECRET", "");
    if (strlen(secret) >= sizeof cfg->client_secret)
        settings_fail(s, "MILLOM_SP_OAUTH_CLIENT_SECRET must be shorter than %zu characters",
                      sizeof cfg->client_secret);
    else
        snprintf(cfg->client_secret, sizeof cfg->client_secret, "%s", secret);
}

sp_auth *sp_auth_new(const sp_auth_cfg *cfg) {
    sp_auth *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->cfg = *cfg;
    pthread_mutex_init(&a->mu, NULL);
    return a;
}

void sp_auth_free(sp_auth *a) {
    if (!a) return;
    pthread_mutex_destroy(&a->mu);
    OPENSSL_cleanse(a, sizeof *a);
    free(a);
}

int sp_auth_checks_tokens(const sp_auth *a) { return a && a->cfg.client_secret[0]; }
size_t sp_auth_keys(const sp_auth *a) { return a ? a->cfg.n_keys : 0; }

/* Constant time over the longer of the two, so a guess's length and
 * prefix tell nothing. */
static int text_equal(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    size_t n = na > nb ? na : nb;
    int same = na == nb;
    for (size_t i = 0; i < n; i++) same &= (i < na ? a[i] : 0) == (i < nb ? b[i] : 0);
    return same;
}

int sp_auth_issue(sp_auth *a, const char *client_id, const char *client_secret, int64_t now_ms,
                  char token[SP_TOKEN_MAX]) {
    if (!sp_auth_checks_tokens(a)) return -1;
    /* both compared, whichever fails */
    int ok =
        text_equal(client_id, a->cfg.client_id) & text_equal(client_secret, a->cfg.client_secret);
    if (!ok) return -1;
    unsigned char raw[TOKEN_BYTES];
    if (crypto_random(raw, sizeof raw) != 0) return -2;
    char *text = crypto_b64url_encode(raw, sizeof raw);
    OPENSSL_cleanse(raw, sizeof raw);
    if (!text || strlen(text) != TOKEN_LEN) {
        free(text);
        return -2;
    }
    pthread_mutex_lock(&a->mu);
    issued_token *t = &a->tokens[a->next];
    a->next = (a->next + 1) % TOKENS_MAX;
    memcpy(t->token, text, TOKEN_LEN + 1);
    t->expires_ms = now_ms + SP_TOKEN_TTL_S * 1000LL;
    pthread_mutex_unlock(&a->mu);
    memcpy(token, text, TOKEN_LEN + 1);
    OPENSSL_cleanse(text, TOKEN_LEN);
    free(text);
    return 0;
}

long sp_auth_revoke_all(sp_auth *a) {
    long n = 0;
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < TOKENS_MAX; i++) {
        n += a->tokens[i].token[0] != '\0';
        OPENSSL_cleanse(&a->tokens[i], sizeof a->tokens[i]);
    }
    pthread_mutex_unlock(&a->mu);
    return n;
}

/* 1 when token is one this sandbox issued and it has not expired. */
static int token_known(sp_auth *a, const char *token, int64_t now_ms) {
    if (strlen(token) != TOKEN_LEN) return 0;
    int known = 0;
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < TOKENS_MAX; i++) {
        const issued_token *t = &a->tokens[i];
        known |=
            t->token[0] && CRYPTO_memcmp(t->token, token, TOKEN_LEN) == 0 && now_ms < t->expires_ms;
    }
    pthread_mutex_unlock(&a->mu);
    return known;
}

void sp_auth_check(sp_auth *a, const sp_auth_request *r, int64_t now_ms, sp_auth_verdict *out) {
    memset(out, 0, sizeof *out);
    out->ok = 1;
    if (sp_auth_checks_tokens(a)) {
        const char *h = r->authorization;
        if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
            out->ok = 0;
            out->token_refused = 1;
            snprintf(out->error, sizeof out->error, "bearer token: none");
            return;
        }
        const char *tok = h + 7;
        while (*tok == ' ') tok++;
        if (!token_known(a, tok, now_ms)) {
            out->ok = 0;
            out->token_refused = 2;
            snprintf(out->error, sizeof out->error,
                     "bearer token: not one this provider issued, or expired or revoked");
            return;
        }
        snprintf(out->checked, sizeof out->checked, "token");
    }
    if (sp_auth_keys(a)) {
        webhook_verdict v = webhook_verify(a->cfg.keys, a->cfg.n_keys, r->webhook_id,
                                           r->webhook_timestamp, r->webhook_signature, r->body,
                                           r->body_len, now_ms / 1000, WEBHOOK_TOLERANCE_S);
        if (v != WEBHOOK_VERIFIED) {
            out->ok = 0;
            snprintf(out->error, sizeof out->error, "signature: %s", webhook_verdict_text(v));
            return;
        }
        size_t n = strlen(out->checked);
        snprintf(out->checked + n, sizeof out->checked - n, "%ssignature", n ? " " : "");
    }
}
