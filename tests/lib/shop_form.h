/* The shop page's purchase forms (routes_rnf.c) as a test submits them:
 * <form method="post" action="..."> with hidden <input name value>. */
#ifndef TESTS_SHOP_FORM_H
#define TESTS_SHOP_FORM_H

#include <stddef.h>

/* The index-th form (0 = first) of the page: *url = base + its action,
 * *body = its fields as application/x-www-form-urlencoded (both malloc'd,
 * caller frees). The transactionId field is copied to tid when given.
 * 0, or -1 when the page has no such form. */
int test_shop_form(const char *html, int index, const char *base, char **url, char **body,
                   char *tid, size_t tidlen);

/* Number of purchase forms on the page. */
int test_shop_form_count(const char *html);

#define TEST_FORM_TYPE "Content-Type: application/x-www-form-urlencoded"

#endif
