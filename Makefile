# The two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install clean sim-sweep bench bench-log bench-gossip bench-cluster chaos drill

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/shoal node start --data-dir ./shoal-data --listen 127.0.0.1:7350

test: $(STAMP)
	$(BIN)/python -m pytest -q -x --durations=15

bench: $(STAMP)
	$(BIN)/python -m shoal.bench

# Storage and replicated-log append throughput/latency on real LMDB (about a minute).
bench-log: $(STAMP)
	$(BIN)/python -m shoal.bench.store_bench
	$(BIN)/python -m shoal.bench.log_bench

# kill -9 detection on 5 real nodes with the small gossip preset, 20 runs (about 2 minutes).
bench-gossip: $(STAMP)
	$(BIN)/python -m shoal.bench.gossip_detect --runs 20

# W1-W4 on 3 nodes (R = 3) beside one node (R = 1), then 20 kill -9s of a shard leader:
# failover p50/p99 (about ten minutes). QUICK=1: small workloads; KILLS=N: that many kills;
# SHARDS=N: --num-shards (default 512, the product's).
bench-cluster: $(STAMP)
	$(BIN)/python -m shoal.bench.cluster_bench $(if $(QUICK),--quick) --kills $(or $(KILLS),20) \
		$(if $(SHARDS),--num-shards $(SHARDS))

# Long simulator sweeps (minutes); `make test` runs short versions of both.
sim-sweep: $(STAMP)
	$(BIN)/python -m shoal.sim.gossip_sim --sweep 50 --nodes 50 --loss 0.05 --pause 5
	$(BIN)/python -m shoal.sim.replication_sim --replicas 3 --seed 100 --seeds 60 --steps 20000
	$(BIN)/python -m shoal.sim.replication_sim --replicas 5 --seed 100 --seeds 60 --steps 20000
	$(BIN)/python -m shoal.sim.cluster_sim --nodes 3 --seed 100 --seeds 40 --steps 100000
	$(BIN)/python -m shoal.sim.cluster_sim --nodes 5 --seed 100 --seeds 40 --steps 100000

# Kill -9 / SIGTERM / restart / network-partition loop over 5 real nodes for 5 minutes while
# workflows run, then every invariant is checked; prints one JSON report (exit 1 on a
# violation). CHAOS_SEED picks the fault schedule; the short version runs in `make test`.
CHAOS_SEED ?= 1
chaos: $(STAMP)
	PYTHONPATH=tests $(BIN)/python -m chaos.chaos_run --nodes 5 --seconds 300 --seed $(CHAOS_SEED)

# Issue 7's "Done means" drill at full size: 500 workflows (activities, a timer, a signal)
# mid-run while kill -9 takes a shard leader of 3 nodes, and two of 5 one after the other,
# then the killed nodes restart; every outcome, history, list entry and acknowledged signal
# is checked. Prints each test's JSON summary and wall time. `make test` runs the same tests
# at 60 and 150 workflows. DRILL_WORKFLOWS=N: another size; DRILL_TIMEOUT_S: per test.
DRILL_WORKFLOWS ?= 500
DRILL_TIMEOUT_S ?= 1800
DRILL_TESTS := tests/integration/test_cluster_workflows.py::test_kill_9_of_a_shard_leader_loses_nothing_and_its_node_comes_back \
	tests/integration/test_cluster_workflows.py::test_five_nodes_lose_two_one_after_the_other_and_get_them_back
drill: $(STAMP)
	SHOAL_DRILL_WORKFLOWS=$(DRILL_WORKFLOWS) SHOAL_DRILL_TIMEOUT_S=$(DRILL_TIMEOUT_S) \
		$(BIN)/python -m pytest -v -rP --durations=0 $(DRILL_TESTS)

clean:
	rm -rf $(VENV) shoal-data
