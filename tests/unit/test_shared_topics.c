/* The topic registry (shared/plumbing/topics.h) against docker/create-topics.sh,
 * which creates the topics on a real cluster and cannot include the
 * header: the same consumed topics (each with a DLQ twin), the same
 * short-lived ones, a `topic` line for every other one, compaction where
 * the table says so, and no topic in the script that the table lacks. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/topics.h"

static char *script;

static void load_script(void) {
    FILE *f = fopen("docker/create-topics.sh", "r");
    ck_assert_msg(f != NULL, "run from the repository root");
    static char buf[64 * 1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    script = buf;
}

/* The text between `start` and the first `end` after it (static buffer). */
static const char *between(const char *start, const char *end) {
    static char out[4096];
    const char *a = strstr(script, start);
    ck_assert_msg(a != NULL, "create-topics.sh has no %s", start);
    a += strlen(start);
    const char *b = strstr(a, end);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_lt((size_t)(b - a), sizeof out);
    memcpy(out, a, (size_t)(b - a));
    out[b - a] = '\0';
    return out;
}

/* Whether a whitespace-separated word of list equals name. */
static int has_word(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n) {
        int starts = p == list || strchr(" \t\n\"(", p[-1]) != NULL;
        int ends = p[n] == '\0' || strchr(" \t\n\")", p[n]) != NULL;
        if (starts && ends) return 1;
    }
    return 0;
}

/* The script line creating name ("topic <name> ..." with its
 * continuations), or NULL. */
static const char *topic_line(const char *name) {
    static char line[512];
    char needle[128];
    snprintf(needle, sizeof needle, "\ntopic %s ", name);
    const char *p = strstr(script, needle);
    if (!p) return NULL;
    p++;
    size_t k = 0;
    while (*p && k < sizeof line - 1) {
        if (*p == '\n' && p[-1] != '\\') break;
        line[k++] = *p++;
    }
    line[k] = '\0';
    return line;
}

START_TEST(consumed_and_short_lived_lists_match) {
    load_script();
    char consumed[4096], short_lived[1024];
    snprintf(consumed, sizeof consumed, "%s", between("consumed_topics=(", ")"));
    snprintf(short_lived, sizeof short_lived, "%s", between("short_lived=\"", "\""));
    int n_consumed = 0;
    for (const millom_topic *t = millom_topics; t->name; t++) {
        int is_consumed = t->kind == TOPIC_KIND_CONSUMED;
        n_consumed += is_consumed;
        ck_assert_msg(has_word(consumed, t->name) == is_consumed,
                      "%s: consumed in the table %d, in create-topics.sh %d", t->name, is_consumed,
                      !is_consumed);
        if (is_consumed)
            ck_assert_msg(has_word(short_lived, t->name) == t->short_lived,
                          "%s: short-lived in the table %d", t->name, t->short_lived);
    }
    /* Nothing in the script's list that the table lacks. */
    int words = 0;
    for (char *w = strtok(consumed, " \t\n"); w; w = strtok(NULL, " \t\n")) {
        if (*w == '#') break;
        words++;
    }
    ck_assert_int_eq(words, n_consumed);
}
END_TEST

START_TEST(other_topics_have_their_line) {
    load_script();
    int lines = 0;
    for (const millom_topic *t = millom_topics; t->name; t++) {
        if (t->kind == TOPIC_KIND_CONSUMED) continue;
        const char *line = topic_line(t->name);
        ck_assert_msg(line != NULL, "create-topics.sh does not create %s", t->name);
        lines++;
        int compacted = strstr(line, "cleanup.policy=compact") != NULL;
        ck_assert_msg(compacted == (t->kind == TOPIC_KIND_COMPACTED), "%s: compaction", t->name);
        if (t->kind == TOPIC_KIND_REPLIES) ck_assert_ptr_nonnull(strstr(line, "$REPLY_PARTITIONS"));
    }
    /* Every `topic millom.*` line is one of them. */
    int in_script = 0;
    for (const char *p = script; (p = strstr(p, "\ntopic millom.")) != NULL; p++) in_script++;
    ck_assert_int_eq(in_script, lines);
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared_topics");
    TCase *tc = tcase_create("registry");
    tcase_add_test(tc, consumed_and_short_lived_lists_match);
    tcase_add_test(tc, other_topics_have_their_line);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
