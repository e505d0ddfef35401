/* File-system helpers. */
#ifndef SHARED_FILES_H
#define SHARED_FILES_H

#include <stddef.h>

/* mkdir -p: creates dir and its missing parents (mode 0755). 0, or -1 with
 * errno set. */
int files_mkdir_p(const char *dir);

/* mkdir -p of the directory part of file_path ("a/b/c.db" creates a/b;
 * a bare name creates nothing). 0, or -1 with errno set. */
int files_mkdir_parents(const char *file_path);

/* The whole of a regular file, NUL-terminated (the NUL not counted in
 * *len), at most max bytes. Caller frees. NULL with errno set: EFBIG
 * when it is larger than max, EINVAL when it is no regular file. */
char *files_read_all(const char *path, size_t max, size_t *len);

#endif
