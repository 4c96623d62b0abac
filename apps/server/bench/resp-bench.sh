#!/usr/bin/env bash
# The RESP front-end beside the native client and a durable redis-server, in one run:
#   1. a local 3-server paxkv cluster (`paxkv cluster start --resp`, fsync batch, 16 partitions);
#   2. redis-benchmark -t set,get,incr -n N -c C -P P against one server's RESP port (the issue's command,
#      whose keys are all one key, `key:__rand_int__`), and again with -r 100000 (random keys);
#   3. `paxkv bench` (native client, closed loop) at concurrency C and at C*P (the same number of
#      requests in flight as the pipelined redis-benchmark), put and get;
#   4. redis-server with appendonly yes, appendfsync always (one durable C process), same redis-benchmark.
# Needs redis-tools (redis-benchmark) and, for step 4, redis-server (Debian packages).
# Usage: bash apps/server/bench/resp-bench.sh [N] [C] [P]   (defaults 100000 50 16)
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
N="${1:-100000}"
C="${2:-50}"
P="${3:-16}"
DURATION="${DURATION:-10}"
work="$(mktemp -d)"
redis_pid=""
cleanup() {
  (cd "$root" && pnpm -s paxkv cluster stop --dir "$work/cluster" >/dev/null 2>&1) || true
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
command -v redis-benchmark >/dev/null || { echo "redis-benchmark not found: apt-get install redis-tools" >&2; exit 2; }

echo "# $(date -u +%FT%TZ) $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
cd "$root"
pnpm -s paxkv cluster start --resp --detach --dir "$work/cluster" --fsync batch >"$work/start.txt"
servers="$(node -e 'const f=require(process.argv[1]);console.log(f.nodes.map(n=>n.address).join(","))' "$work/cluster/cluster.json")"
resp="$(node -e 'const f=require(process.argv[1]);console.log(f.nodes[0].respPort)' "$work/cluster/cluster.json")"

rb() { # label, port, extra args...
  local label="$1" port="$2"
  shift 2
  # An error reply (e.g. -TIMEOUT on an overloaded machine) makes redis-benchmark exit non-zero: say so
  # and go on with the rest of the run instead of stopping it.
  { redis-benchmark -h 127.0.0.1 -p "$port" -t set,get,incr -n "$N" -c "$C" -P "$P" -q --csv "$@" 2>"$work/rb.err" ||
    echo "# redis-benchmark failed ($label, exit $?): $(tail -c 300 "$work/rb.err")" >&2; } |
    awk -F, -v l="$label" 'NR>1 {gsub(/"/,""); printf "%s\t%s\t%s ops/s\tp50 %s ms\n", l, $1, $2, $5}'
}
native() { # workload, clients
  pnpm -s paxkv --servers "$servers" bench --workload "$1" --clients "$2" --duration "$DURATION" 2>/dev/null |
    awk -v l="paxkv native $1 c=$2" '/ops\/s/ {print l "\t" $0; exit}'
}

echo "## paxkv 3 replicas, fsync batch: RESP (redis-benchmark -c $C -P $P, one server's port)"
rb "paxkv RESP one key" "$resp" | tee "$work/resp-one.txt"
rb "paxkv RESP -r 100000" "$resp" -r 100000 | tee "$work/resp-rand.txt"
echo "## paxkv 3 replicas, fsync batch: native client (paxkv bench, ${DURATION} s each)"
native put "$C" | tee "$work/native-put-c.txt"
native get "$C" | tee "$work/native-get-c.txt"
native put "$((C * P))" | tee "$work/native-put-cp.txt"
native get "$((C * P))" | tee "$work/native-get-cp.txt"

# Ratios of the same run (the goal: RESP >= 0.9x native). ops/s = the number before " ops/s".
ops() { grep -m1 "$2" "$1" 2>/dev/null | grep -o '[0-9.]* ops/s' | head -1 | cut -d' ' -f1; }
ratio() { # label, resp ops, native ops
  if [ -n "$2" ] && [ -n "$3" ]; then awk -v l="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%s\t%.2fx (%s vs %s ops/s)\n", l, a / b, a, b }'; fi
}
echo "## RESP / native, same run (>= 0.9x is the goal)"
for f in one rand; do
  ratio "SET ($f) / put c=$C" "$(ops "$work/resp-$f.txt" SET)" "$(ops "$work/native-put-c.txt" put)"
  ratio "SET ($f) / put c=$((C * P))" "$(ops "$work/resp-$f.txt" SET)" "$(ops "$work/native-put-cp.txt" put)"
  ratio "GET ($f) / get c=$C" "$(ops "$work/resp-$f.txt" GET)" "$(ops "$work/native-get-c.txt" get)"
  ratio "GET ($f) / get c=$((C * P))" "$(ops "$work/resp-$f.txt" GET)" "$(ops "$work/native-get-cp.txt" get)"
done

if command -v redis-server >/dev/null; then
  port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
  mkdir -p "$work/redis"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$work/redis" --appendonly yes --appendfsync always \
    --save '' --daemonize no --logfile "$work/redis/log" &
  redis_pid=$!
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  echo "## redis-server 1 node, appendonly yes, appendfsync always"
  rb "redis-server aof always" "$port"
  rb "redis-server aof always -r 100000" "$port" -r 100000
else
  echo "## redis-server not installed (apt-get install redis-server): skipped"
fi
