/* datadir.h - the data directory: created if missing, and locked so two
 * servers never write the same log. */
#ifndef STAGE_DATADIR_H
#define STAGE_DATADIR_H

/* Creates dir (and parents) if needed and takes an exclusive lock on
 * dir/LOCK. Returns the lock's file descriptor (keep it open for the life
 * of the process), or -1 after logging why. */
int datadir_open_and_lock(const char *dir);
/* fsyncs the directory that holds path: a newly created file or directory
 * survives a power cut only once its parent's entry for it is on disk.
 * Returns 0, or -1 with errno set. */
int datadir_fsync_parent(const char *path);

#endif
