/* See files.h. */
#include "shared/plumbing/files.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int files_mkdir_p(const char *dir) {
    char path[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path) {
        errno = n ? ENAMETOOLONG : ENOENT;
        return -1;
    }
    memcpy(path, dir, n + 1);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) return -1;
        if (c == '\0') return 0;
        *p = c;
    }
}

int files_mkdir_parents(const char *file_path) {
    char dir[PATH_MAX];
    size_t n = strlen(file_path);
    if (n >= sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(dir, file_path, n + 1);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = '\0';
    return files_mkdir_p(dir);
}

char *files_read_all(const char *path, size_t max, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct stat st;
    char *buf = NULL;
    int saved = 0;
    if (fstat(fileno(f), &st) != 0) {
        saved = errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        saved = EINVAL;
        goto out;
    }
    /* Read to the end, not st_size: the file may grow while being read;
     * one byte more than max tells it is too large. */
    size_t cap = (size_t)st.st_size < max ? (size_t)st.st_size + 1 : max + 1, n = 0;
    buf = malloc(cap + 1);
    if (!buf) {
        saved = ENOMEM;
        goto out;
    }
    for (;;) {
        n += fread(buf + n, 1, cap - n, f);
        if (n > max) {
            saved = EFBIG;
            break;
        }
        if (n < cap) {
            if (ferror(f)) saved = EIO;
            break;
        }
        size_t grown_cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
        char *grown = realloc(buf, grown_cap + 1);
        if (!grown) {
            saved = ENOMEM;
            break;
        }
        buf = grown;
        cap = grown_cap;
    }
    if (saved) {
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[n] = '\0';
    *len = n;
out:
    fclose(f);
    if (saved) errno = saved;
    return buf;
}
