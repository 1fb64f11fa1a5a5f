#!/usr/bin/env bash
# Replication under heavy batches (issue 15, docs/benchmarks.md): the same raftstream-bench
# workload against one node and against three release-build nodes on loopback (RF=3), with
# librdkafka's default batching (batch.size 1,000,000 bytes, linger.ms 5), acks=all, 16
# partitions. Afterwards it checks the cluster's logs for Raft RPC timeouts and each node's
# controller term for an election during the runs, and prints the medians side by side.
# Usage: scripts/cluster-bench.sh [runs (3)] [seconds per run (10)]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
seconds="${2:-10}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet --workspace --bins
bin="$CARGO_TARGET_DIR/release"
dir=$(mktemp -d)
out="${OUT:-bench-out/cluster}"
mkdir -p "$out"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$dir"' EXIT

# Nine free loopback ports (Kafka, cluster and HTTP listeners of three nodes).
read -r -a ports <<<"$(python3 -c '
import socket
s = [socket.socket() for _ in range(9)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')"

workload=(--partitions 16 --record-size 1024 --acks all --batch-bytes 1000000 --linger-ms 5
    --duration-s "$seconds")

# $1: HTTP port. Prints the node's controller term (0 on a single node).
term() { curl -sf "http://127.0.0.1:$1/metrics" | awk '/^raftstream_controller_term /{print $2}' | grep . || echo 0; }

wait_ready() { for p in "$@"; do until curl -sf "http://127.0.0.1:$p/health/ready" >/dev/null; do sleep 0.2; done; done; }

echo "== one node"
"$bin/raftstream" --data-dir "$dir/single" --listen "127.0.0.1:${ports[0]}" \
    --http-listen "127.0.0.1:${ports[6]}" >"$dir/single.log" 2>&1 &
single=$!
pids+=("$single")
wait_ready "${ports[6]}"
for r in $(seq 1 "$runs"); do
    "$bin/raftstream-bench" run --bootstrap "127.0.0.1:${ports[0]}" "${workload[@]}" \
        --broker-pid "$single" --name "single-$r" --out "$out" | tail -4
done
kill "$single"
wait "$single" || true

echo "== three nodes, RF=3"
peers="1@127.0.0.1:${ports[3]},2@127.0.0.1:${ports[4]},3@127.0.0.1:${ports[5]}"
for i in 1 2 3; do
    "$bin/raftstream" --data-dir "$dir/d$i" --listen "127.0.0.1:${ports[$((i - 1))]}" \
        --http-listen "127.0.0.1:${ports[$((i + 5))]}" --node-id "$i" \
        --cluster-listen "127.0.0.1:${ports[$((i + 2))]}" --peers "$peers" >"$dir/node$i.log" 2>&1 &
    pids+=($!)
done
wait_ready "${ports[6]}" "${ports[7]}" "${ports[8]}"
terms_before="$(term "${ports[6]}") $(term "${ports[7]}") $(term "${ports[8]}")"
# Only what the nodes log from here on counts (forming the cluster and its 50 offsets
# partitions at once may time out a few RPCs before any load).
lines_before=()
for i in 1 2 3; do lines_before+=("$(wc -l <"$dir/node$i.log")"); done
for r in $(seq 1 "$runs"); do
    "$bin/raftstream-bench" run --bootstrap "127.0.0.1:${ports[0]}" "${workload[@]}" \
        --replication-factor 3 --broker-pid "${pids[1]}" --name "cluster-$r" --out "$out" | tail -4
done
terms_after="$(term "${ports[6]}") $(term "${ports[7]}") $(term "${ports[8]}")"
timeouts=0
for i in 1 2 3; do
    n=$(tail -n +"$((lines_before[i - 1] + 1))" "$dir/node$i.log" | grep -cE "did not answer within|RPCError" || true)
    timeouts=$((timeouts + n))
done
avoided=0
for p in "${ports[6]}" "${ports[7]}" "${ports[8]}"; do
    n=$(curl -sf "http://127.0.0.1:$p/metrics" | awk '/^raftstream_cluster_append_resends_avoided_total /{print $2}')
    avoided=$((avoided + ${n:-0}))
done
cp "$dir"/node?.log "$out/"

python3 - "$out" "$runs" <<EOF
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
def med(kind, key):
    rows = [json.load(open(f"{out}/{kind}-{r}.json")) for r in range(1, runs + 1)]
    bad = [r["name"] for r in rows if any(r["verification"][k] for k in ("lost", "duplicated", "corrupt"))]
    assert not bad, f"verification failed: {bad}"
    return statistics.median(key(r) for r in rows)
rate = lambda r: r["records_per_second"]
p99 = lambda r: r["ack_latency"]["p99_ms"]
one, three = med("single", rate), med("cluster", rate)
print(f"median of {runs} runs: one node {one:,.0f} rec/s (ack p99 {med('single', p99):.1f} ms), "
      f"3 nodes RF=3 {three:,.0f} rec/s (ack p99 {med('cluster', p99):.1f} ms): {100 * three / one:.0f}%")
EOF
echo "Raft RPC timeouts logged during the runs: $timeouts; AppendEntries re-sends avoided: $avoided"
echo "controller terms before: $terms_before; after: $terms_after"
[ "$terms_before" = "$terms_after" ] || echo "a controller election happened during the runs"
