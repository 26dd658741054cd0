/* server_proc.c - real server processes for C tests (see server_proc.h). */
#include "server_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int can_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int spawn(server_proc *sp) {
    const char *bin = getenv("KV_SERVER_BIN");
    if (!bin) {
        fprintf(stderr, "KV_SERVER_BIN is not set\n");
        return -1;
    }
    char port[16], data[128], logp[128];
    snprintf(port, sizeof port, "%d", sp->port);
    snprintf(data, sizeof data, "%s/data", sp->dir);
    snprintf(logp, sizeof logp, "%s/server.log", sp->dir);
    /* KV_SERVER_ARGS: flags every server of this test gets (set by CMake). */
    const char *common = getenv("KV_SERVER_ARGS");
    char extra[512];
    snprintf(extra, sizeof extra, "%s %s", common ? common : "", sp->extra);
    char *argv[40] = {(char *)bin, "--port", port, "--bind", "127.0.0.1", "--data-dir", data, "--log-level", "warn"};
    int argc = 9;
    for (char *tok = strtok(extra, " "); tok && argc < 39; tok = strtok(NULL, " ")) argv[argc++] = tok;
    argv[argc] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        /* A test that dies (a failed assertion, a ctest timeout) must not
         * leave its server running: the server gets SIGTERM with it. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(1);
        int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(bin, argv);
        _exit(127);
    }
    sp->pid = pid;
    double deadline = now() + 10;
    while (now() < deadline) {
        if (can_connect(sp->port)) return 0;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            sp->pid = 0;
            return -1;
        }
        usleep(10000); /* polling interval, not synchronisation */
    }
    return -1;
}

int server_start(server_proc *sp, const char *extra_flags) {
    snprintf(sp->dir, sizeof sp->dir, "/tmp/kvctest-XXXXXX");
    if (!mkdtemp(sp->dir)) return -1;
    snprintf(sp->extra, sizeof sp->extra, "%s", extra_flags ? extra_flags : "");
    if (sp->port == 0) sp->port = free_port();
    return spawn(sp);
}

int server_restart(server_proc *sp) { return spawn(sp); }

void server_signal(server_proc *sp, int sig) {
    if (sp->pid > 0) kill(sp->pid, sig);
}

int server_stop(server_proc *sp) {
    if (sp->pid <= 0) return -1;
    kill(sp->pid, SIGCONT);
    kill(sp->pid, SIGTERM);
    double deadline = now() + 10;
    int status = 0;
    while (waitpid(sp->pid, &status, WNOHANG) == 0) {
        if (now() > deadline) {
            kill(sp->pid, SIGKILL);
            waitpid(sp->pid, &status, 0);
            break;
        }
        usleep(10000);
    }
    sp->pid = 0;
    return status;
}

/* A sanitizer report does not always change the exit code; the log is the truth. */
static int log_is_clean(const server_proc *sp) {
    char path[128], line[1024];
    snprintf(path, sizeof path, "%s/server.log", sp->dir);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    int clean = 1;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "AddressSanitizer") || strstr(line, "LeakSanitizer") || strstr(line, "runtime error:") ||
            strstr(line, "VALGRIND-ERROR-BEGIN")) {
            fprintf(stderr, "server log %s: %s", path, line);
            clean = 0;
        }
    }
    fclose(f);
    return clean;
}

int server_cleanup(server_proc *sp) {
    if (sp->pid > 0) server_stop(sp); /* graceful, so LeakSanitizer runs at exit */
    int clean = sp->dir[0] ? log_is_clean(sp) : 1;
    if (sp->dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", sp->dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", sp->dir);
        sp->dir[0] = '\0';
    }
    return clean ? 0 : -1;
}
