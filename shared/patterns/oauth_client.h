/* Outbound OAuth 2.0 client credentials (RFC 6749 §4.4): bearer tokens for
 * Millom's own calls to operator backends and provider webhooks.
 *
 * One token source per (token URL, client id, scope), shared by the whole
 * process. A token is fetched only when there is none or it is within the
 * refresh margin of its expiry: MILLOM_OAUTH_REFRESH_MARGIN_S (default 30)
 * or 10% of its lifetime, whichever is smaller. Under concurrency exactly
 * one fetch happens per expiry: other callers wait for it and use its
 * result (its failure too). Secrets and tokens are never logged.
 * oauth_cached_authorization reads the cache without ever waiting. */
#ifndef MILLOM_OAUTH_CLIENT_H
#define MILLOM_OAUTH_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "shared/plumbing/http_client.h"

typedef struct oauth_token_source oauth_token_source;

/* The process-wide source for these credentials, created on first use
 * (never freed). A changed secret for an existing source replaces the old
 * one for the next fetch. scope may be NULL or "". NULL when out of memory
 * or token_url/client_id/client_secret is missing. */
oauth_token_source *oauth_source_get(const char *token_url, const char *client_id,
                                     const char *client_secret, const char *scope);

/* Fills header with "Authorization: Bearer <token>", fetching a token with
 * hc (POST token_url, HTTP Basic credentials, form body
 * grant_type=client_credentials[&scope=...]) when needed; the fetch times
 * out after MILLOM_OAUTH_TIMEOUT_MS (default 3000). 0 on success; -1 with
 * a message (no secret, no token) in header on failure, nothing cached. */
int oauth_authorization(oauth_token_source *s, http_client *hc, char *header, size_t len);

/* The same without blocking, for a caller that must not wait on HTTP (a
 * thread driving many calls at once): fills header from the cached token
 * when there is one that is not yet due for a refresh and returns 0;
 * otherwise -1 (header untouched) and the caller fetches with
 * oauth_authorization elsewhere. Never fetches, never waits for a fetch. */
int oauth_cached_authorization(oauth_token_source *s, char *header, size_t len);

/* The same, but a token within its refresh margin still counts until it
 * expires; then *due is set to 1, and the caller should have one fetch
 * made (oauth_authorization, elsewhere) while it goes on using this one.
 * For a thread driving many calls, so the calls around each refresh need
 * not wait for it. */
int oauth_valid_authorization(oauth_token_source *s, char *header, size_t len, int *due);

/* Drops the cached token if it is still `token` (after a 401), so the next
 * oauth_authorization fetches a fresh one; a token already replaced is
 * left alone, so concurrent 401s for one token cause one refresh. `token`
 * may also be the whole header oauth_authorization filled in. */
void oauth_invalidate(oauth_token_source *s, const char *token);

/* Replaces the clock (milliseconds, monotonic) for tests; NULL restores
 * CLOCK_MONOTONIC. */
void oauth_set_clock(int64_t (*now_ms)(void));

#endif
