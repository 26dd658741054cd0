/* sim_main.c - the simulation driver: runs every scenario (or one) over a
 * range of seeds; on a violation prints the scenario, the seed, the command
 * that replays it, and the last events, then exits nonzero.
 *   raft_sim [--seeds N] [--first-seed S] [--scenario NAME] [--expect-violation]
 *            [--timeline PATH]
 *   env: SIM_SEEDS=N, SIM_SEED=S (replay one seed), SIM_SCENARIO=NAME,
 *        SIM_VERBOSE=1 (print every event), SIM_TRACE=N (events shown on failure, <= 256),
 *        SIM_TIMELINE=PATH (as --timeline), SIM_ARTIFACTS=DIR (where a failing run's
 *        timeline goes; default the current directory)
 * --expect-violation is for the deliberately broken builds: it succeeds only
 * if some seed makes the checker report a violation.
 * --timeline writes every event of the one selected run as JSON lines. A
 * failing run is replayed (runs are deterministic) with the timeline on, into
 * <scenario>-<seed>.timeline.jsonl and .html: the seeded runs themselves
 * never format anything. An expected violation writes them only when
 * SIM_ARTIFACTS or --timeline asks, so the broken builds' ctests leave no files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"
#ifdef SIM_OOM /* from oom.c; oom.h itself would hook the driver's own allocations */
void oom_seed(uint64_t seed, unsigned per_million);
uint64_t oom_failures(void);
#endif
#ifndef SIM_TIMELINE_PY
#define SIM_TIMELINE_PY "scripts/timeline.py"
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t parse_u64(const char *s, const char *what) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end) {
        fprintf(stderr, "raft_sim: bad %s '%s'\n", what, s);
        exit(2);
    }
    return v;
}

/* One run of one seed; with tl, every event goes there as JSON lines. */
static struct sim *run_one(const struct sim_scenario *sc, uint64_t seed, FILE *tl,
                           const char *argv0) {
    struct sim *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    sim_init(s, sc->name, seed, sc->nodes);
#ifdef SIM_OOM
    oom_seed(seed, SIM_OOM);
#endif
    if (tl)
        sim_tl_begin(s, tl, argv0);
    sc->run(s);
    if (!s->failed)
        sim_check_deep(s);
    return s;
}

/* Runs the seed again with its timeline written to path: -1 if the file
 * could not be written, else whether the run failed. */
static int write_timeline(const struct sim_scenario *sc, uint64_t seed, const char *path,
                          const char *argv0) {
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    struct sim *s = run_one(sc, seed, f, argv0);
    int failed = s ? s->failed : -1;
    if (s) {
        sim_free(s);
        free(s);
    }
    if (ferror(f))
        failed = -1;
    if (fclose(f) != 0)
        failed = -1;
    return failed;
}

/* scripts/timeline.py jsonl -o html, under Debian's python; true on success. */
static bool render_html(const char *jsonl, const char *html) {
    const char *script = getenv("SIM_TIMELINE_PY") ? getenv("SIM_TIMELINE_PY") : SIM_TIMELINE_PY;
    fflush(NULL); /* or the child would print our buffered output again */
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        execl("/usr/bin/python3", "python3", script, jsonl, "-o", html, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return false;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void write_artifacts(const struct sim_scenario *sc, uint64_t seed, const char *dir,
                            const char *argv0) {
    char jsonl[4096], html[4096];
    int n1 = snprintf(jsonl, sizeof jsonl, "%s/%s-%llu.timeline.jsonl", dir, sc->name,
                      (unsigned long long)seed);
    int n2 = snprintf(html, sizeof html, "%s/%s-%llu.timeline.html", dir, sc->name,
                      (unsigned long long)seed);
    if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof jsonl || (size_t)n2 >= sizeof html) {
        printf("timeline: SIM_ARTIFACTS path too long\n");
        return;
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        printf("timeline: cannot create %s: %s\n", dir, strerror(errno));
        return;
    }
    int rc = write_timeline(sc, seed, jsonl, argv0);
    if (rc < 0) {
        printf("timeline: cannot write %s\n", jsonl);
        return;
    }
    if (rc == 0)
        printf("timeline: the replay did not fail again, so the run is not deterministic; "
               "its events are in %s\n", jsonl);
    if (render_html(jsonl, html))
        printf("timeline: %s (events: %s)\n", html, jsonl);
    else
        printf("timeline: events in %s; drawing them failed, try: make timeline RUN=%s\n", jsonl,
               jsonl);
}

int main(int argc, char **argv) {
    uint64_t seeds = 20, first = 1;
    const char *only = getenv("SIM_SCENARIO");
    bool expect_violation = false, quiet = false;
    const char *timeline = getenv("SIM_TIMELINE");
    const char *artifacts = getenv("SIM_ARTIFACTS");
    unsigned trace_n = getenv("SIM_TRACE") ? (unsigned)parse_u64(getenv("SIM_TRACE"), "SIM_TRACE") : 60;
    if (getenv("SIM_SEEDS"))
        seeds = parse_u64(getenv("SIM_SEEDS"), "SIM_SEEDS");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seeds") && i + 1 < argc)
            seeds = parse_u64(argv[++i], "--seeds");
        else if (!strcmp(argv[i], "--first-seed") && i + 1 < argc)
            first = parse_u64(argv[++i], "--first-seed");
        else if (!strcmp(argv[i], "--scenario") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--expect-violation"))
            expect_violation = true;
        else if (!strcmp(argv[i], "--quiet"))
            quiet = true;
        else if (!strcmp(argv[i], "--timeline") && i + 1 < argc)
            timeline = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--seeds N] [--first-seed S] [--scenario NAME] "
                            "[--expect-violation] [--quiet] [--timeline PATH]\n", argv[0]);
            return 2;
        }
    }
    if (getenv("SIM_SEED")) {
        first = parse_u64(getenv("SIM_SEED"), "SIM_SEED");
        seeds = 1;
    }
    if (timeline && (!only || seeds != 1)) {
        fprintf(stderr, "raft_sim: --timeline records one run: give a scenario and one seed "
                        "(SIM_SCENARIO=Name SIM_SEED=n)\n");
        return 2;
    }
    /* a violation the caller expects leaves files only where it asked for them */
    bool want_artifacts = !expect_violation || artifacts || timeline;
    if (!artifacts || !*artifacts)
        artifacts = ".";
    bool matched = false;
    uint64_t runs = 0, events = 0, oom_total = 0, installs = 0, transfers = 0;
    double t0 = now_s();
    for (unsigned k = 0; k < sim_n_scenarios; k++) {
        const struct sim_scenario *sc = &sim_scenarios[k];
        if (only && strcmp(only, sc->name))
            continue;
        matched = true;
        double ts = now_s();
        for (uint64_t seed = first; seed < first + seeds; seed++) {
            FILE *tl = NULL;
            if (timeline && !(tl = fopen(timeline, "w"))) {
                fprintf(stderr, "raft_sim: cannot write %s: %s\n", timeline, strerror(errno));
                return 2;
            }
            struct sim *s = run_one(sc, seed, tl, argv[0]);
            if (tl) {
                bool bad = ferror(tl) != 0;
                if (fclose(tl) != 0 || bad) {
                    fprintf(stderr, "raft_sim: writing %s failed\n", timeline);
                    if (s)
                        sim_free(s);
                    free(s);
                    return 2;
                }
            }
            if (!s)
                return 3;
            runs++;
            events += s->events;
            installs += s->installs;
            transfers += s->snaps_sent;
#ifdef SIM_OOM
            oom_total += oom_failures();
#endif
            if (s->failed) {
                printf("%s: scenario %s seed %llu: %s\n",
                       expect_violation ? "CAUGHT (as expected)" : "FAIL", sc->name,
                       (unsigned long long)seed, s->why);
                if (!expect_violation || !quiet)
                    sim_trace_dump(s, trace_n);
                printf("replay: SIM_SCENARIO=%s SIM_SEED=%llu %s\n", sc->name,
                       (unsigned long long)seed, argv[0]);
                sim_free(s);
                free(s);
                if (want_artifacts)
                    write_artifacts(sc, seed, artifacts, argv[0]);
                return expect_violation ? 0 : 1;
            }
            sim_free(s);
            free(s);
        }
        if (!quiet)
            printf("ok   %-20s %llu seeds from %llu  %.2fs\n", sc->name, (unsigned long long)seeds,
                   (unsigned long long)first, now_s() - ts);
    }
    if (!matched) {
        fprintf(stderr, "raft_sim: no scenario named '%s'\n", only ? only : "");
        return 2;
    }
    double dt = now_s() - t0;
    printf("%llu runs, %llu checked events in %.2fs (%.0f runs/s); %llu snapshot transfers, "
           "%llu installed\n", (unsigned long long)runs, (unsigned long long)events, dt,
           dt > 0 ? (double)runs / dt : 0.0, (unsigned long long)transfers,
           (unsigned long long)installs);
#ifdef SIM_OOM
    printf("%llu allocations in the core failed on purpose\n", (unsigned long long)oom_total);
#else
    (void)oom_total;
#endif
    if (expect_violation) {
        printf("NOT CAUGHT: the checker found no violation in a deliberately broken core\n");
        return 1;
    }
    return 0;
}
