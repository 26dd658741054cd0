# Thin wrapper over CMake and ctest. `make help` lists the targets.
# (Static pattern rules: make skips implicit-rule search for .PHONY targets.)
MAKEFLAGS   += --no-print-directory
BUILD_DIR   ?= build
RELEASE_DIR ?= build-release
VG_DIR      ?= build-valgrind
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
STAGES      := stage1-single-node stage2-wal stage3-client stage4-replication stage5-raft stage6-snapshots

.PHONY: sim-stage5 sim-stage6 jepsen-stage5 jepsen-stage6 timeline help deps build build-valgrind release test valgrind demo bench fuzz clean check-copies cluster-stage4 doc-check \
        test-stage1 test-stage2 test-stage3 test-stage4 test-stage5 test-stage6 \
        diff-stage2 diff-stage3 diff-stage4 diff-stage5 diff-stage6 lab-lint \
        $(foreach n,1 2 3 4 5 6,lab-stage$(n) lab-test-stage$(n) lab-reset-stage$(n))

help:
	@echo "make demo          install deps, build, run the demo"
	@echo "make test          install deps, build, run every stage's suite with ASan+UBSan, then under valgrind"
	@echo "make build         the test build (ASan+UBSan) in build/"
	@echo "make release       the optimised build in build-release/ (benchmarks)"
	@echo "make valgrind      only the valgrind half of make test"
	@echo "make test-stageN   run one stage's suite (N = 1..6)"
	@echo "make diff-stageN   show what stage N changed against stage N-1 (its LESSON first)"
	@echo "make check-copies  check that each stage differs from the previous one only where its LESSON says"
	@echo "make lab-stageN    copy stage N into labs/ with its lab tasks to write (never overwrites)"
	@echo "make lab-test-stageN [TASK=name]  build labs/ stage N, run its tests, PASS/FAIL per task"
	@echo "make lab-reset-stageN  start stage N's lab over (the old copy goes to labs/.old/)"
	@echo "make sim-stage5 [SEEDS=N]  the Raft core's seeded simulation, N seeds per scenario (default 2000)"
	@echo "make sim-stage6 [SEEDS=N]  the same for stage 6's core, with snapshots and InstallSnapshot"
	@echo "make jepsen-stage5 [RUNS=N] [SEED=s] [MIX=kill|partition|mixed] [DURATION=secs]"
	@echo "make jepsen-stage6 [RUNS=N] [SEED=s] [MIX=kill|partition|mixed|membership] [DURATION=secs]  (snapshots every 50 entries)"
	@echo "                   N linearizability fault runs against a real 3-node stage 5 cluster, a table at the end"
	@echo "make timeline RUN=events.jsonl [OUT=x.html]  draw a Raft run's events as an HTML timeline"
	@echo "make timeline SCENARIO=Figure8 SEED=5 [SIM=raft_sim_broken_commit_old_term]"
	@echo "                   run one simulation seed with its timeline on and draw it (FROM=, TO=: a time window; SCALE=px per election timeout)"
	@echo "make timeline LOGS=\"node1.log node2.log node3.log\" [RUN=harness-events.jsonl]  a real stage 5 run"
	@echo "make cluster-stage4 a stage 4 leader and two followers on loopback until Ctrl-C"
	@echo "make doc-check     run the commands of README.md and notes/ marked doc-check, compare their output"
	@echo "make bench         release build, benchmarks against redis-server (stages 1-4) and etcd 3.4 (stages 5-6)"
	@echo "make fuzz          run the RESP parser and peer frame fuzzers for a bounded time each (FUZZ_SECONDS)"
	@echo "make cluster-stage5 a three-node stage 5 Raft cluster on loopback until Ctrl-C"
	@echo "make partition-stage5  the same behind fault proxies: isolate, cut, block, delay, heal by hand"
	@echo "make deps          install missing Debian packages"
	@echo "make clean         remove build directories"

deps:
	@scripts/deps.sh

# The everyday build is the test build: sanitizers on, so every run checks memory.
build: deps
	@cmake -S . -B $(BUILD_DIR) -DKV_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD_DIR) -j$(JOBS)

release: deps
	@cmake -S . -B $(RELEASE_DIR) -DCMAKE_BUILD_TYPE=Release -DKV_SANITIZE=OFF >/dev/null
	@cmake --build $(RELEASE_DIR) -j$(JOBS)

# The same tests, built without sanitizers, with every test binary and every
# server they start under valgrind's memcheck (which sees reads of
# uninitialised memory; ASan does not).
build-valgrind: deps
	@cmake -S . -B $(VG_DIR) -DCMAKE_BUILD_TYPE=Debug -DKV_SANITIZE=OFF -DKV_VALGRIND=ON >/dev/null
	@cmake --build $(VG_DIR) -j$(JOBS)

valgrind: build-valgrind
	cd $(VG_DIR) && ctest --output-on-failure -j$(JOBS)

test: build build-valgrind
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS)
	cd $(VG_DIR) && ctest --output-on-failure -j$(JOBS)

$(addprefix test-stage,1 2 3 4 5 6): test-stage%: build
	@n=$*; dir=$$(echo $(STAGES) | cut -d' ' -f$$n); \
	if [ ! -f "$$dir/CMakeLists.txt" ]; then echo "stage $$n ($$dir) is not built yet"; exit 0; fi; \
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS) -L "^stage$$n$$"

# Exit status 141 (SIGPIPE) is a reader such as `head` that stopped early.
$(addprefix diff-stage,2 3 4 5 6): diff-stage%:
	@scripts/diff-stage.sh $* || [ $$? -eq 141 ]

# The drift guard (also run by make test, as the ctest checks.copies).
check-copies:
	@/usr/bin/python3 scripts/check_copies.py

# Labs (scripts/lab.py; notes/00 says how they work). lab-test builds in
# build-lab/<stage>/ with sanitizers, like make build.
LAB := /usr/bin/python3 scripts/lab.py

lab-lint:
	@$(LAB) lint

$(addprefix lab-stage,1 2 3 4 5 6): lab-stage%:
	@$(LAB) generate $*

$(addprefix lab-reset-stage,1 2 3 4 5 6): lab-reset-stage%:
	@$(LAB) generate $* --force

$(addprefix lab-test-stage,1 2 3 4 5 6): lab-test-stage%: deps
	@$(LAB) test $* --jobs $(JOBS) $(if $(TASK),--task $(TASK))

# The Raft core's deterministic simulation, more seeds than make test runs
# (SEEDS per scenario; SIM_SCENARIO=Name, SIM_SEED=n replay one run).
SEEDS ?= 2000
sim-stage5: build
	$(BUILD_DIR)/bin/raft_sim --seeds $(SEEDS)
# Stage 6's core, with snapshots (stage 5's scenarios and the Snapshot* ones).
sim-stage6: build
	$(BUILD_DIR)/bin/raft6_sim --seeds $(SEEDS)

# Linearizability fault runs against a real stage 5 cluster (tests/stage5/
# jepsen.py; notes/05 5.12 says how to read them): RUNS runs, seeds SEED,
# SEED+1, ... (default random), MIX of faults (default kill, partition,
# mixed in turn), DURATION seconds each (default 30).
RUNS ?= 5
jepsen-stage5: build
	@/usr/bin/python3 scripts/jepsen_stage5.py --bin-dir $(BUILD_DIR)/bin --runs $(RUNS) \
	  $(if $(SEED),--seed $(SEED)) $(if $(MIX),--mix $(MIX)) $(if $(DURATION),--duration $(DURATION))
# The same against stage 6 with --snapshot-entries 50 (snapshots, truncation
# and InstallSnapshot many times a run) and the membership mix (CLUSTER
# REMOVE and ADD of a follower) in the rotation; notes/06 6.11.
jepsen-stage6: build
	@/usr/bin/python3 scripts/jepsen_stage5.py --stage 6 --bin-dir $(BUILD_DIR)/bin --runs $(RUNS) \
	  $(if $(SEED),--seed $(SEED)) $(if $(MIX),--mix $(MIX)) $(if $(DURATION),--duration $(DURATION))

# The course's runnable examples against the test build (also part of make
# test, as the ctest docs.doc_check).
doc-check: build
	@/usr/bin/python3 scripts/doc_check.py --bin-dir $(BUILD_DIR)/bin

# A Raft run drawn as HTML (scripts/timeline.py; notes/05 says how to read
# it): RUN= a JSON lines file of events, or SCENARIO= and SEED= of the
# simulation (SIM= picks a broken build), run with --timeline into
# TIMELINE_DIR. A failing run prints its trace and is drawn all the same.
# LOGS= stage 5 servers' logs (one per node; RUN= then adds the faults a
# test harness recorded) for a real run.
SIM          ?= raft_sim
TIMELINE_DIR ?= $(BUILD_DIR)/timeline
TIMELINE_PY  := /usr/bin/python3 scripts/timeline.py $(if $(FROM),--from $(FROM)) $(if $(TO),--to $(TO)) \
                $(if $(SCALE),--scale $(SCALE))
timeline: $(if $(RUN)$(LOGS),,$(if $(SCENARIO)$(SEED),build))
ifdef LOGS
	@out=$(if $(OUT),$(OUT),timeline.html); \
	$(TIMELINE_PY) $(RUN) $(foreach l,$(LOGS),--log $(l)) -o $$out && echo "timeline: $$out"
else ifdef RUN
	@$(TIMELINE_PY) $(RUN) $(if $(OUT),-o $(OUT)) && \
	  echo "timeline: $(if $(OUT),$(OUT),$(patsubst %.jsonl,%,$(RUN)).html)"
else ifneq ($(SCENARIO)$(SEED),)
	@[ -n "$(SCENARIO)" ] && [ -n "$(SEED)" ] || { echo "make timeline: give SCENARIO= and SEED= together"; exit 2; }
	@mkdir -p $(TIMELINE_DIR)
	@ev=$(TIMELINE_DIR)/$(SCENARIO)-$(SEED).timeline.jsonl; \
	out=$(if $(OUT),$(OUT),$(TIMELINE_DIR)/$(SCENARIO)-$(SEED).timeline.html); \
	SIM_SCENARIO=$(SCENARIO) SIM_SEED=$(SEED) SIM_TRACE=10 SIM_ARTIFACTS=$(TIMELINE_DIR) \
	  $(BUILD_DIR)/bin/$(SIM) --timeline $$ev; rc=$$?; \
	[ $$rc -le 1 ] || exit $$rc; \
	$(TIMELINE_PY) $$ev -o $$out && echo "timeline: $$out"
else
	@echo "make timeline RUN=events.jsonl [OUT=x.html], or SCENARIO=Name SEED=n [SIM=binary], or LOGS=\"n1.log n2.log ...\""; exit 2
endif

demo: build
	@scripts/demo.sh $(BUILD_DIR)/bin

# Ports, data dir and follower count: see the top of the script.
cluster-stage4: build
	@scripts/cluster-stage4.sh $(BUILD_DIR)/bin

# A three-node Raft cluster; ports: see the top of the script.
.PHONY: cluster-stage5
cluster-stage5: build
	@scripts/cluster-stage5.sh $(BUILD_DIR)/bin

# The same cluster with its peer links behind fault proxies and a prompt
# that cuts, blocks, delays and heals them (notes/05-raft.md 5.15.4).
.PHONY: partition-stage5
partition-stage5: build
	@/usr/bin/python3 scripts/partition-stage5.py --bin $(BUILD_DIR)/bin

bench: release
	@for s in tests/bench/stage[0-9].sh; do BENCH_NO_BUILD=1 "$$s" || exit 1; done

fuzz: deps
	@EXTRA_PACKAGES="clang libclang-rt-14-dev" scripts/deps.sh
	@tests/fuzz/run.sh

clean:
	rm -rf $(BUILD_DIR) $(RELEASE_DIR) $(VG_DIR) build-fuzz build-lab
