/* sim_main.c - the simulation driver: runs every scenario (or one) over a
 * range of seeds; on a violation prints the scenario, the seed, the command
 * that replays it, and the last events, then exits nonzero.
 *   raft_sim [--seeds N] [--first-seed S] [--scenario NAME] [--expect-violation]
 *   env: SIM_SEEDS=N, SIM_SEED=S (replay one seed), SIM_SCENARIO=NAME,
 *        SIM_VERBOSE=1 (print every event), SIM_TRACE=N (events shown on failure, <= 256)
 * --expect-violation is for the deliberately broken builds: it succeeds only
 * if some seed makes the checker report a violation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"
#ifdef SIM_OOM /* from oom.c; oom.h itself would hook the driver's own allocations */
void oom_seed(uint64_t seed, unsigned per_million);
uint64_t oom_failures(void);
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

int main(int argc, char **argv) {
    uint64_t seeds = 20, first = 1;
    const char *only = getenv("SIM_SCENARIO");
    bool expect_violation = false, quiet = false;
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
        else {
            fprintf(stderr, "usage: %s [--seeds N] [--first-seed S] [--scenario NAME] "
                            "[--expect-violation] [--quiet]\n", argv[0]);
            return 2;
        }
    }
    if (getenv("SIM_SEED")) {
        first = parse_u64(getenv("SIM_SEED"), "SIM_SEED");
        seeds = 1;
    }
    bool matched = false;
    uint64_t runs = 0, events = 0, oom_total = 0;
    double t0 = now_s();
    for (unsigned k = 0; k < sim_n_scenarios; k++) {
        const struct sim_scenario *sc = &sim_scenarios[k];
        if (only && strcmp(only, sc->name))
            continue;
        matched = true;
        double ts = now_s();
        for (uint64_t seed = first; seed < first + seeds; seed++) {
            struct sim *s = calloc(1, sizeof *s);
            if (!s)
                return 3;
            sim_init(s, sc->name, seed, sc->nodes);
#ifdef SIM_OOM
            oom_seed(seed, SIM_OOM);
#endif
            sc->run(s);
            if (!s->failed)
                sim_check_deep(s);
            runs++;
            events += s->events;
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
    printf("%llu runs, %llu checked events in %.2fs (%.0f runs/s)\n", (unsigned long long)runs,
           (unsigned long long)events, dt, dt > 0 ? (double)runs / dt : 0.0);
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
