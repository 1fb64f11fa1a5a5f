#!/usr/bin/env bash
# Idle cost of many partitions (docs/benchmarks.md): three release-build nodes on loopback in a
# fresh temp dir, one topic of 1,000 RF=3 partitions, CPU of each node while nothing happens.
# Usage: scripts/idle-cost.sh [extra raftstream-bench idle flags, e.g. --partitions 500]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet --workspace --bins
bin="$CARGO_TARGET_DIR/release"
dir=$(mktemp -d)
# Nine free loopback ports (Kafka, cluster and HTTP listeners of three nodes).
read -r -a ports <<<"$(python3 -c '
import socket
s = [socket.socket() for _ in range(9)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')"
peers="1@127.0.0.1:${ports[3]},2@127.0.0.1:${ports[4]},3@127.0.0.1:${ports[5]}"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$dir"' EXIT
for i in 1 2 3; do
    "$bin/raftstream" --data-dir "$dir/d$i" --listen "127.0.0.1:${ports[$((i - 1))]}" --http-listen "127.0.0.1:${ports[$((i + 5))]}" \
        --node-id "$i" --cluster-listen "127.0.0.1:${ports[$((i + 2))]}" --peers "$peers" >"$dir/log$i" 2>&1 &
    pids+=($!)
done
for i in 6 7 8; do
    until curl -sf "http://127.0.0.1:${ports[$i]}/health/ready" >/dev/null; do sleep 0.2; done
done
"$bin/raftstream-bench" idle --bootstrap "127.0.0.1:${ports[0]}" \
    --pids "$(IFS=,; echo "${pids[*]}")" "$@"
