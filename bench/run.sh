#!/usr/bin/env bash
# asyncgate against a direct connection, nginx and HAProxy, side by side in one run.
#   bench/run.sh           full suite (3 repetitions), rewrites docs/benchmarks.md
#   bench/run.sh --quick   one short repetition, results in target/bench only
# For comparing changes: BENCH_POINTS=64x16-64B,idle BENCH_REPS=5 bench/run.sh --quick
# runs only the named points (labels as in the table, "idle" for memory), N times.
# Installs nginx and HAProxy (Debian packages) if missing. The backend and the load
# generator share CPU 0; every proxy (asyncgate included) gets CPU 1, one worker.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full
[ "${1:-}" = "--quick" ] && mode=quick
if [ "$mode" = quick ]; then reps=1; secs=1.5; idle_count=1000; hs_secs=1.5; fan_msgs=50; else reps=3; secs=4; idle_count=8000; hs_secs=3; fan_msgs=200; fi
reps=${BENCH_REPS:-$reps}
only=${BENCH_POINTS:-}
selected() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

if ! command -v nginx >/dev/null || ! command -v haproxy >/dev/null; then
  (apt-get update -qq || true) >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light haproxy >/dev/null 2>&1 \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx haproxy >/dev/null
fi
# Proxying N idle connections takes 2N descriptors in the proxy: the idle counts stay
# under this workplace's limit of 20,000 descriptors per process.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --quiet --release -p asyncgate -p asyncgate-bench
bin=target/release
work=target/bench/$mode
rm -rf "$work"; mkdir -p "$work"
results=$work/results.jsonl
: > "$results"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# TLS: one certificate (for 127.0.0.1, from a test CA) for every proxy terminating TLS.
tls=$PWD/$work/tls
"$bin/asyncgate-bench" certificates --dir "$tls"

# Backend on CPU 0.
backend_port=$(port)
taskset -c 0 "$bin/asyncgate-bench" echo-backend --listen "127.0.0.1:$backend_port" > "$work/backend.out" &
pids+=($!)
bcast_port=$(port)
taskset -c 0 "$bin/asyncgate-bench" broadcast-backend --listen "127.0.0.1:$bcast_port" > "$work/bcast.out" &
pids+=($!)
# An echo backend that accepts permessage-deflate, for the compression points.
deflate_port=$(port)
taskset -c 0 "$bin/asyncgate-bench" deflate-echo-backend --listen "127.0.0.1:$deflate_port" > "$work/deflate.out" &
pids+=($!)

# nginx, tuned as its documentation advises for WebSocket proxying.
nginx_port=$(port)
nginx_tls_port=$(port)
mkdir -p "$work/nginx"
cat > "$work/nginx/websocket.conf" <<CONF
proxy_http_version 1.1;
proxy_set_header Upgrade \$http_upgrade;
proxy_set_header Connection \$connection_upgrade;
proxy_buffer_size 64k;
proxy_buffers 8 64k;
proxy_read_timeout 3600s;
tcp_nodelay on;
CONF
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $PWD/$work/nginx/nginx.pid;
error_log $PWD/$work/nginx/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 19000; multi_accept on; }
http {
  access_log off;
  client_body_temp_path $PWD/$work/nginx; proxy_temp_path $PWD/$work/nginx;
  fastcgi_temp_path $PWD/$work/nginx; uwsgi_temp_path $PWD/$work/nginx; scgi_temp_path $PWD/$work/nginx;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:$nginx_tls_port ssl;
    ssl_certificate $tls/cert.pem;
    ssl_certificate_key $tls/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://127.0.0.1:$backend_port;
      include $PWD/$work/nginx/websocket.conf;
    }
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location /bcast {
      proxy_pass http://127.0.0.1:$bcast_port;
      include $PWD/$work/nginx/websocket.conf;
    }
    location /deflate {
      proxy_pass http://127.0.0.1:$deflate_port;
      include $PWD/$work/nginx/websocket.conf;
    }
    location / {
      proxy_pass http://127.0.0.1:$backend_port;
      include $PWD/$work/nginx/websocket.conf;
    }
  }
}
CONF
taskset -c 1 nginx -c "$PWD/$work/nginx/nginx.conf" &
pids+=($!)

# HAProxy, one thread.
haproxy_port=$(port)
haproxy_tls_port=$(port)
cat > "$work/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 9500
defaults
  mode http
  timeout connect 5s
  timeout client 1h
  timeout server 1h
  timeout tunnel 1h
frontend ws
  bind 127.0.0.1:$haproxy_port
  acl is_bcast path_beg /bcast
  acl is_deflate path_beg /deflate
  use_backend bcast if is_bcast
  use_backend deflate if is_deflate
  default_backend echo
frontend wss
  bind 127.0.0.1:$haproxy_tls_port ssl crt $tls/combined.pem alpn http/1.1
  default_backend echo
backend echo
  server b1 127.0.0.1:$backend_port
backend bcast
  server b2 127.0.0.1:$bcast_port
backend deflate
  server b3 127.0.0.1:$deflate_port
CONF
taskset -c 1 haproxy -f "$work/haproxy.cfg" -db &
pids+=($!)

# asyncgate: the API deployed with an API key; production's external listener has TLS.
data=$work/asyncgate-data
cat > "$work/asyncgate.yaml" <<CONF
listen:
  environments:
    - name: production
      external: {tls: {cert_file: $tls/cert.pem, key_file: $tls/key.pem}}
gateway:
  access_log: {enabled: false}
CONF
taskset -c 1 "$bin/asyncgate" serve --config "$work/asyncgate.yaml" --ephemeral-ports --data-dir "$data" > "$work/asyncgate.out" 2>&1 &
pids+=($!)
asyncgate_pid=$!
for _ in $(seq 1 200); do [ -f "$data/endpoints.json" ] && break; sleep 0.05; done
export ASYNCGATE_DATA_DIR=$data
json() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
"$bin/asyncgate" api import --file samples/chat-service-asyncapi.yaml --identifier bench --target "ws://127.0.0.1:$backend_port" -o json > /dev/null
"$bin/asyncgate" api update bench --max-message-bytes 1048576 --idle-timeout 3600 -o json > /dev/null
gw_url=$("$bin/asyncgate" api deploy bench --env development --access external -o json | json url)
key=$("$bin/asyncgate" api key create bench -o json | json key)
gw_tls_url=$("$bin/asyncgate" api deploy bench --env production --access external -o json | json url)
"$bin/asyncgate" api import --file samples/chat-service-asyncapi.yaml --identifier bcast --target "ws://127.0.0.1:$bcast_port" -o json > /dev/null
"$bin/asyncgate" api update bcast --idle-timeout 3600 -o json > /dev/null
gw_bcast_url=$("$bin/asyncgate" api deploy bcast --env development --access external -o json | json url)
bcast_key=$("$bin/asyncgate" api key create bcast -o json | json key)
# What a credential costs per handshake: the same API with security off, and with an
# application's OAuth2 token (client credentials) instead of the API key.
"$bin/asyncgate" api import --file samples/chat-service-asyncapi.yaml --identifier open --target "ws://127.0.0.1:$backend_port" -o json > /dev/null
"$bin/asyncgate" api update open --security off -o json > /dev/null
gw_open_url=$("$bin/asyncgate" api deploy open --env development --access external -o json | json url)
# What message validation costs: the same API with the chat contract's schemas enforced
# (`reject`), driven with the chat sample's messages (as asyncgate-chat is, without it).
"$bin/asyncgate" api import --file samples/chat-service-asyncapi.yaml --identifier validated --target "ws://127.0.0.1:$backend_port" -o json > /dev/null
"$bin/asyncgate" api update validated --max-message-bytes 1048576 --idle-timeout 3600 --message-validation reject -o json > /dev/null
gw_validated_url=$("$bin/asyncgate" api deploy validated --env development --access external -o json | json url)
validated_key=$("$bin/asyncgate" api key create validated -o json | json key)
# Compression: the chat sample's messages compressed by the client, through an API with
# compression auto (passed through: no policy reads payloads), off, and terminate.
for c in auto off terminate; do
  "$bin/asyncgate" api import --file samples/chat-service-asyncapi.yaml --identifier "deflate-$c" --target "ws://127.0.0.1:$deflate_port" -o json > /dev/null
  "$bin/asyncgate" api update "deflate-$c" --idle-timeout 3600 --compression "$c" -o json > /dev/null
  declare "gw_deflate_${c}_url=$("$bin/asyncgate" api deploy "deflate-$c" --env development --access external -o json | json url)"
  declare "deflate_${c}_key=$("$bin/asyncgate" api key create "deflate-$c" -o json | json key)"
done
"$bin/asyncgate" api lifecycle bench publish > /dev/null
app_json=$("$bin/asyncgate" app create bench-client -o json)
client_id=$(echo "$app_json" | json clientId); client_secret=$(echo "$app_json" | json clientSecret)
"$bin/asyncgate" app subscribe bench-client bench > /dev/null
management=$(python3 -c "import json; print(json.load(open('$data/endpoints.json'))['management'])")
jwt=$(python3 - "$management/oauth2/token" "$client_id" "$client_secret" <<'PY'
import base64, json, sys, urllib.request
url, cid, secret = sys.argv[1:4]
req = urllib.request.Request(url, data=b"grant_type=client_credentials", headers={
    "Authorization": "Basic " + base64.b64encode(f"{cid}:{secret}".encode()).decode(),
    "Content-Type": "application/x-www-form-urlencoded"})
print(json.load(urllib.request.urlopen(req))["access_token"])
PY
)
sleep 0.5

nginx_pid=$(pgrep -f "nginx: worker process" | head -1 || true)
haproxy_pid=$(pgrep -x haproxy | tail -1 || true)
targets=(direct asyncgate nginx haproxy)
url_of() { # target [fanout|tls|deflate]
  if [ "${2:-}" = deflate ]; then
    case $1 in
      direct) echo "ws://127.0.0.1:$deflate_port/" ;;
      asyncgate) echo "$gw_deflate_auto_url" ;;
      asyncgate-deflate-off) echo "$gw_deflate_off_url" ;;
      asyncgate-deflate-terminate) echo "$gw_deflate_terminate_url" ;;
      nginx) echo "ws://127.0.0.1:$nginx_port/deflate" ;;
      haproxy) echo "ws://127.0.0.1:$haproxy_port/deflate" ;;
    esac
    return
  fi
  if [ "${2:-}" = tls ]; then
    case $1 in
      asyncgate) echo "$gw_tls_url" ;;
      nginx) echo "wss://127.0.0.1:$nginx_tls_port/" ;;
      haproxy) echo "wss://127.0.0.1:$haproxy_tls_port/" ;;
    esac
    return
  fi
  if [ "${2:-}" = fanout ]; then
    case $1 in
      direct) echo "ws://127.0.0.1:$bcast_port/" ;;
      asyncgate) echo "$gw_bcast_url" ;;
      nginx) echo "ws://127.0.0.1:$nginx_port/bcast" ;;
      haproxy) echo "ws://127.0.0.1:$haproxy_port/bcast" ;;
    esac
    return
  fi
  case $1 in
    direct) echo "ws://127.0.0.1:$backend_port/" ;;
    asyncgate|asyncgate-jwt|asyncgate-chat) echo "$gw_url" ;;
    asyncgate-open) echo "$gw_open_url" ;;
    asyncgate-validated) echo "$gw_validated_url" ;;
    nginx) echo "ws://127.0.0.1:$nginx_port/" ;;
    haproxy) echo "ws://127.0.0.1:$haproxy_port/" ;;
  esac
}
pid_of() { case $1 in asyncgate|asyncgate-open|asyncgate-jwt|asyncgate-chat|asyncgate-validated|asyncgate-deflate-off|asyncgate-deflate-terminate) echo "$asyncgate_pid" ;; nginx) echo "$nginx_pid" ;; haproxy) echo "$haproxy_pid" ;; *) echo "" ;; esac; }
headers_of() { # target [fanout|tls|deflate]; one argument per line
  if [ "${2:-}" = deflate ]; then
    case $1 in
      asyncgate) printf '%s\n' --header "api-key:$deflate_auto_key" ;;
      asyncgate-deflate-off) printf '%s\n' --header "api-key:$deflate_off_key" ;;
      asyncgate-deflate-terminate) printf '%s\n' --header "api-key:$deflate_terminate_key" ;;
    esac
    return
  fi
  case $1 in
    asyncgate-jwt) printf '%s\n' --header "authorization:Bearer $jwt" ;;
    asyncgate-chat) printf '%s\n' --header "api-key:$key" --chat ;;
    asyncgate-validated) printf '%s\n' --header "api-key:$validated_key" --chat ;;
    asyncgate) if [ "${2:-}" = fanout ]; then printf '%s\n' --header "api-key:$bcast_key"; else printf '%s\n' --header "api-key:$key"; fi ;;
  esac
}
# User and system CPU ticks of a process (all its threads): "utime stime".
cpu_ticks() { [ -n "$1" ] && awk '{print $14, $15}' "/proc/$1/stat" || echo "0 0"; }
rss_kb() { [ -n "$1" ] && awk '/VmRSS/{print $2}' "/proc/$1/status" || echo 0; }

run_point() { # rep target label args...
  local rep=$1 target=$2 label=$3; shift 3
  local pid; pid=$(pid_of "$target")
  local before; before=$(cpu_ticks "$pid")
  # shellcheck disable=SC2046
  local kind=""; [ "$1" = fanout ] && kind=fanout
  local ca=()
  if [[ $label == tls-* ]]; then kind=tls; ca=(--ca "$tls/ca.pem"); fi
  [[ $label == deflate-* ]] && kind=deflate
  local hdr; mapfile -t hdr < <(headers_of "$target" "$kind")
  local out; out=$(taskset -c 0 "$bin/asyncgate-bench" "$@" --url "$(url_of "$target" "$kind")" "${hdr[@]}" "${ca[@]}")
  local after; after=$(cpu_ticks "$pid")
  python3 -c "import json,sys; d=json.loads(sys.argv[1]); b=[int(x) for x in sys.argv[5].split()]; a=[int(x) for x in sys.argv[6].split()]; d.update(rep=int(sys.argv[2]), target=sys.argv[3], point=sys.argv[4], proxy_cpu_s=(a[0]+a[1]-b[0]-b[1])/100, proxy_user_s=(a[0]-b[0])/100); print(json.dumps(d))" \
    "$out" "$rep" "$target" "$label" "$before" "$after" >> "$results"
}

points=(
  "1x1-64B|rtt --connections 1 --inflight 1 --size 64 --seconds $secs"
  "64x1-64B|rtt --connections 64 --inflight 1 --size 64 --seconds $secs"
  "64x16-64B|rtt --connections 64 --inflight 16 --size 64 --seconds $secs"
  "1x1-16KiB|rtt --connections 1 --inflight 1 --size 16384 --seconds $secs"
  "64x16-16KiB|rtt --connections 64 --inflight 16 --size 16384 --seconds $secs"
  "handshakes|handshakes --concurrency 16 --seconds $hs_secs"
  "fanout-1000|fanout --receivers 1000 --messages $fan_msgs --seconds $secs"
  "tls-64x16-64B|rtt --connections 64 --inflight 16 --size 64 --seconds $secs"
  "tls-handshakes|handshakes --concurrency 16 --seconds $hs_secs"
  "deflate-64x4-256B|deflate-rtt --connections 64 --inflight 4 --size 256 --seconds $secs --offer"
  "deflate-64x4-2KiB|deflate-rtt --connections 64 --inflight 4 --size 2048 --seconds $secs --offer"
)
for rep in $(seq 1 "$reps"); do
  for point in "${points[@]}"; do
    label=${point%%|*}; args=${point#*|}
    selected "$label" || continue
    point_targets=("${targets[@]}")
    # TLS is terminated by the proxies; the backend behind them is plain.
    [[ $label == tls-* ]] && point_targets=(asyncgate nginx haproxy)
    [[ $label == deflate-* ]] && point_targets=(direct asyncgate asyncgate-deflate-off asyncgate-deflate-terminate nginx haproxy)
    [ "$label" = handshakes ] && point_targets+=(asyncgate-open asyncgate-jwt)
    case $label in 64x16-64B|64x16-16KiB) point_targets+=(asyncgate-chat asyncgate-validated) ;; esac
    for target in "${point_targets[@]}"; do
      # shellcheck disable=SC2086
      run_point "$rep" "$target" "$label" $args
    done
  done
  echo "repetition $rep done" >&2
done

# Idle memory per proxied connection: connections opened and held (`hold` seconds), the
# proxy's resident size before and while they are held.
hold_idle() { # target kind holdseconds extra-args... ; prints the holder's pid once all are open
  local target=$1 kind=$2 hold=$3; shift 3
  mapfile -t hdr < <(headers_of "$target" "$kind")
  taskset -c 0 "$bin/asyncgate-bench" idle --count "$idle_count" --hold "$hold" --url "$(url_of "$target" "$kind")" "${hdr[@]}" "$@" > "$work/idle-$target.out" &
  local holder=$!
  for _ in $(seq 1 600); do grep -q open "$work/idle-$target.out" 2>/dev/null && break; sleep 0.1; done
  sleep 1
  echo "$holder"
}
record_idle() { # target before during
  python3 -c "import json,sys; print(json.dumps(dict(point='idle', target=sys.argv[1], connections=int(sys.argv[2]), rss_before_kb=int(sys.argv[3]), rss_held_kb=int(sys.argv[4]), bytes_per_connection=(int(sys.argv[4])-int(sys.argv[3]))*1024/int(sys.argv[2]))))" \
    "$1" "$idle_count" "$2" "$3" >> "$results"
}
selected idle && for target in asyncgate nginx haproxy; do
  pid=$(pid_of "$target")
  before=$(rss_kb "$pid")
  holder=$(hold_idle "$target" "" 8)
  during=$(rss_kb "$pid")
  record_idle "$target" "$before" "$during"
  if [ "$target" = asyncgate ]; then
    # While those are held, as many with permessage-deflate agreed on both sides (the
    # gateway terminating it): what a compressed connection holds while idle.
    compressed=$(hold_idle asyncgate-deflate-terminate deflate 4 --header "sec-websocket-extensions:permessage-deflate")
    record_idle asyncgate-deflate-terminate "$during" "$(rss_kb "$pid")"
    while kill -0 "$compressed" 2>/dev/null; do sleep 0.2; done
  fi
  # The holder was started in a subshell: wait for it to end by polling.
  while kill -0 "$holder" 2>/dev/null; do sleep 0.2; done
  sleep 1
done

out_doc=$work/benchmarks.md
[ "$mode" = full ] && [ -z "$only" ] && out_doc=docs/benchmarks.md
python3 bench/summarize.py "$results" "$out_doc" "$mode" "$reps"
echo "results: $results; summary: $out_doc" >&2
