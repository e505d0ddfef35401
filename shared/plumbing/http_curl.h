/* What http_client.c and http_loop.c share about driving libcurl: the
 * options every call gets, and the collection of an answer into an
 * http_result. Only those two files include this. */
#ifndef MILLOM_HTTP_CURL_H
#define MILLOM_HTTP_CURL_H

#include <curl/curl.h>

#include "shared/plumbing/http_client.h"

/* Sets up h for one call of url: headers, timeouts (timeout_ms for the
 * whole call and for connecting), no signals, TCP_NODELAY, keep-alive,
 * and the answer's body collected into out (cut off at 4 MB). */
void http_curl_prepare(CURL *h, const char *url, struct curl_slist *headers, long timeout_ms,
                       http_result *out);
/* After the call: fills out's status (0 with curl's message and
 * timed_out when rc is not CURLE_OK) and gives it a body ("" when none).
 * 0, or -1 when no answer came or out of memory. */
int http_curl_finish(CURL *h, CURLcode rc, http_result *out);
/* The request headers: up to 8 of `headers`, then Content-Type when
 * content_type is given, then "Expect:". NULL when out of memory. */
struct curl_slist *http_curl_headers(const char *const *headers, const char *content_type);

#endif
