/* The current version of a read-mostly object that is replaced whole
 * while other threads use it: a configuration reloaded at run time.
 *
 * Readers pin the version that is current (snapshot_pin), read it as long
 * as they like, and unpin it; a writer publishes a new version
 * (snapshot_publish) without waiting for anyone. A version is freed when
 * the last of its readers (and the cell) lets go of it, so a reader never
 * sees a version change under it, nor a half-built one: everything a
 * version holds is in place before it is published, and never written
 * afterwards.
 *
 * Built for many short pins per second (every HTTP request) and rare
 * publishes (a reload): a pin is a lock held for one pointer load and one
 * atomic increment, an unpin one atomic decrement. */
#ifndef MILLOM_SNAPSHOT_H
#define MILLOM_SNAPSHOT_H

typedef struct snapshot_cell snapshot_cell;
typedef struct snapshot_version snapshot_version;

/* A cell holding `first` (not NULL), freed with free_fn(first) once the
 * cell and every reader have let go of it; later versions are freed with
 * the free_fn they are published with. NULL when out of memory (then
 * first is not taken: the caller still owns it). */
snapshot_cell *snapshot_cell_new(void *first, void (*free_fn)(void *));
/* Lets go of the current version. Every pin must have been unpinned
 * before, or be unpinned later from a thread that still may (a version
 * outlives the cell while pinned). */
void snapshot_cell_free(snapshot_cell *c);

/* The current version, pinned: it stays as it is, and alive, until
 * snapshot_unpin. Safe from any thread. */
snapshot_version *snapshot_pin(snapshot_cell *c);
/* Another pin on a version the caller has pinned (and not unpinned yet),
 * for work that goes on after the caller lets go of its own: the same
 * version, whatever is current by now. Returns v. */
snapshot_version *snapshot_pin_again(snapshot_version *v);
/* The object of a pinned version (borrowed: valid until the unpin). */
void *snapshot_value(const snapshot_version *v);
/* Lets go of a pin; the last one frees an old version. NULL: nothing. */
void snapshot_unpin(snapshot_version *v);

/* Makes value (not NULL) the current version; readers that pinned the
 * one before keep it until they unpin. 0, or -1 when out of memory (then
 * value is not taken). */
int snapshot_publish(snapshot_cell *c, void *value, void (*free_fn)(void *));

#endif
