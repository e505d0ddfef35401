/* A growing text buffer and RFC 4180 CSV fields (csv.c). */
#ifndef SETTLEMENT_REPORTER_CSV_H
#define SETTLEMENT_REPORTER_CSV_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data; /* NUL-terminated; NULL until something was appended */
    size_t len, cap;
    int failed; /* out of memory: the text is incomplete */
} csv_buf;

void csv_append(csv_buf *b, const char *s, size_t n);
/* One field; `first` omits the comma before it. Quoted (quotes doubled)
 * only when it holds a comma, a quote, CR or LF, as RFC 4180 says. */
void csv_field(csv_buf *b, const char *s, int first);
void csv_field_int(csv_buf *b, int64_t v, int first);
/* Ends a row with CRLF (RFC 4180; spreadsheets accept it everywhere). */
void csv_end_row(csv_buf *b);
/* Hands the text over (caller frees); NULL if anything failed. */
char *csv_take(csv_buf *b);

#endif
