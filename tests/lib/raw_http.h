/* Raw HTTP over TCP for tests that must send what an HTTP library will not
 * (slow headers, idle sockets, duplicate Content-Length, CL with TE) or
 * choose their source address (any of 127.0.0.0/8). */
#ifndef TESTS_LIB_RAW_HTTP_H
#define TESTS_LIB_RAW_HTTP_H

#include <stddef.h>

/* A blocking TCP socket connected to 127.0.0.1:port from src_ip (NULL:
 * the kernel's choice), or -1. */
int raw_connect(const char *src_ip, int port);
/* Sends request on a new connection from src_ip and reads the answer until
 * the server closes or timeout_ms pass. The status code of the answer, 0
 * when the server closed without answering, -1 when the connection
 * failed. The answer (headers and body, NUL-terminated, cut to outlen) in
 * out when out is not NULL. */
int raw_exchange(const char *src_ip, int port, const char *request, size_t len, char *out,
                 size_t outlen, int timeout_ms);
/* 1 if the peer closed fd (end of stream or reset) within timeout_ms,
 * discarding whatever it sent; 0 if it is still open. */
int raw_closed(int fd, int timeout_ms);

#endif
