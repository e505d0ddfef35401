/* File-system helpers. */
#ifndef SHARED_FILES_H
#define SHARED_FILES_H

/* mkdir -p: creates dir and its missing parents (mode 0755). 0, or -1 with
 * errno set. */
int files_mkdir_p(const char *dir);

/* mkdir -p of the directory part of file_path ("a/b/c.db" creates a/b;
 * a bare name creates nothing). 0, or -1 with errno set. */
int files_mkdir_parents(const char *file_path);

#endif
