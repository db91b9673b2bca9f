#!/usr/bin/env bash
# Profile asyncgate under one load of the benchmark suite with perf, pinned as in run.sh.
#   bench/profile.sh rtt --connections 64 --inflight 16 --size 64 --seconds 5
#   bench/profile.sh handshakes --concurrency 16 --seconds 5
# Prints perf's flat report (self time) and leaves perf.data in target/bench/profile.
# PERF_CALLGRAPH="--call-graph dwarf,16384" records full call stacks instead of -g;
# PROFILE_STRACE=1 counts system calls (strace -c) instead; PROFILE_CPU=1 prints the
# gateway's user and system CPU per operation instead (from /proc, no profiler).
# BIN=DIR runs the asyncgate and asyncgate-bench built in DIR (another checkout's
# target/release, to compare two commits) instead of building this one.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { sed -n 2,5p "$0"; exit 64; }
command -v perf >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
[ -n "${BIN:-}" ] || CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --quiet --release -p asyncgate -p asyncgate-bench
bin=${BIN:-target/release}
work=target/bench/profile
rm -rf "$work"; mkdir -p "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }

backend_port=$(port)
taskset -c 0 "$bin/asyncgate-bench" echo-backend --listen "127.0.0.1:$backend_port" > "$work/backend.out" &
pids+=($!)
data=$work/data
# As run.sh: no access log (nginx's and HAProxy's are off there too).
printf 'gateway:\n  access_log: {enabled: false}\n' > "$work/asyncgate.yaml"
taskset -c 1 "$bin/asyncgate" serve --config "$work/asyncgate.yaml" --ephemeral-ports --data-dir "$data" > "$work/asyncgate.out" 2>&1 &
pids+=($!)
gw=$!
for _ in $(seq 1 200); do [ -f "$data/endpoints.json" ] && break; sleep 0.05; done
export ASYNCGATE_DATA_DIR=$data
"$bin/asyncgate" api import --file samples/chat-service-asyncapi.yaml --identifier bench --target "ws://127.0.0.1:$backend_port" -o json > /dev/null
# PROFILE_API_FLAGS: more `api update` flags, e.g. "--message-validation reject".
"$bin/asyncgate" api update bench --max-message-bytes 1048576 --idle-timeout 3600 ${PROFILE_API_FLAGS:-} -o json > /dev/null
url=$("$bin/asyncgate" api deploy bench --env development --access external -o json | json url)
key=$("$bin/asyncgate" api key create bench -o json | json key)

if [ -n "${PROFILE_CPU:-}" ]; then
  ticks() { awk '{print $14, $15}' "/proc/$gw/stat"; }
  before=$(ticks)
  out=$(taskset -c 0 "$bin/asyncgate-bench" "$@" --url "$url" --header "api-key:$key")
  after=$(ticks)
  echo "$out"
  python3 - "$out" "$before" "$after" <<'PY'
import json, os, sys
d = json.loads(sys.argv[1])
n = next(d[k] for k in ("roundtrips", "handshakes", "delivered") if k in d)
(u0, s0), (u1, s1) = ([int(x) for x in a.split()] for a in sys.argv[2:4])
tick = 1e6 / os.sysconf("SC_CLK_TCK")
print(f"per operation: user {(u1 - u0) * tick / n:.1f} µs, system {(s1 - s0) * tick / n:.1f} µs")
PY
  exit 0
fi
if [ -n "${PROFILE_STRACE:-}" ]; then
  # System calls instead of samples: counts per call kind, to divide by the operations.
  command -v strace >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null
  strace ${STRACE_FLAGS:--c} -f -p "$gw" -o "$work/strace.txt" 2> "$work/strace.err" &
  tracer=$!
  sleep 0.5
  taskset -c 0 "$bin/asyncgate-bench" "$@" --url "$url" --header "api-key:$key"
  kill -INT "$tracer"; wait "$tracer" || true
  cat "$work/strace.txt"
  exit 0
fi
perf record -F 2000 ${PERF_CALLGRAPH:--g} -p "$gw" -o "$work/perf.data" 2> "$work/perf.err" &
perfpid=$!
sleep 0.5
taskset -c 0 "$bin/asyncgate-bench" "$@" --url "$url" --header "api-key:$key"
kill -INT "$perfpid"; wait "$perfpid" || true
perf report -i "$work/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep '%' | head -5
perf report -i "$work/perf.data" --no-children --sort symbol --stdio 2>/dev/null | grep -v '^$' | grep '%' | head -60
