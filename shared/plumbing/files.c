/* See files.h. */
#include "shared/plumbing/files.h"

#include <errno.h>
#include <limits.h>
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
