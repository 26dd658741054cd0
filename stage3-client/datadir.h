/* datadir.h - the data directory: created if missing, and locked so two
 * servers never write the same log. */
#ifndef STAGE_DATADIR_H
#define STAGE_DATADIR_H

/* Creates dir (and parents) if needed and takes an exclusive lock on
 * dir/LOCK. Returns the lock's file descriptor (keep it open for the life
 * of the process), or -1 after logging why. */
int datadir_open_and_lock(const char *dir);

#endif
