/* server_proc.h - starts and stops the real server binary (KV_SERVER_BIN)
 * for the C integration tests, on a free loopback port with a fresh data
 * directory. Readiness is polled with a deadline, never slept for. */
#ifndef TEST_SERVER_PROC_H
#define TEST_SERVER_PROC_H

#include <sys/types.h>

typedef struct server_proc {
    pid_t pid;
    int port;
    char dir[64];   /* temp dir holding data/ and server.log */
    char extra[256]; /* extra flags, space-separated */
} server_proc;

/* Starts on a new free port (port == 0) or on sp->port. Returns 0 when the
 * server accepts connections, -1 if it exited or did not come up in 10 s. */
int server_start(server_proc *sp, const char *extra_flags);
/* Restarts with the same port, data directory and flags. */
int server_restart(server_proc *sp);
void server_signal(server_proc *sp, int sig);
/* SIGTERM (or SIGKILL if it does not exit within 10 s), reap, return the exit status. */
int server_stop(server_proc *sp);
/* Stops if running, checks the server's log for sanitizer reports (the
 * test build runs the server with ASan and UBSan), and removes the temp dir.
 * Returns 0 if the log was clean, -1 (after printing the report) if not. */
int server_cleanup(server_proc *sp);

#endif
