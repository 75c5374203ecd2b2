#!/bin/bash
# Prometheus metrics (--metrics-listen, zps-launch --metrics-port-base),
# on a real job of 2 servers and 2 workers:
#   1. every daemon answers GET /metrics with the text format 0.0.4 (the
#      Content-Type), `promtool check metrics` passes on each, the metrics
#      the docs name are there (server and worker), /other is 404, POST 405,
#      the endpoints listen on 127.0.0.1 only;
#   2. counters grow between two scrapes (server pushes, pulls, latency
#      histogram count; worker examples);
#   3. a real Prometheus server (started here, on a free loopback port,
#      scraping every second) answers a query for zps_pushes_total with both
#      servers' series;
#   4. zps-ctl top --once shows every server and worker;
#   5. hostile scrapers: 20 slowloris connections (more than the endpoint's
#      connection limit) and garbage on server 0's metrics port do not stop
#      its loop (its pushes grow, read through zps-ctl stats) nor training;
#      once they close, the endpoint answers again;
#   6. bad --metrics-listen values and a port in use are errors naming them.
# Needs curl, promtool and prometheus (Debian packages curl, prometheus):
# installed here when missing and root, else skipped (exit 77).
. "$(dirname "$0")/lib.sh"
ROOT=$(pwd)
D=$TMP
skip() { echo "SKIP: $*"; exit 77; }

# ---- tools -------------------------------------------------------------------------------
missing=""
command -v curl >/dev/null 2>&1 || missing="$missing curl"
{ command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; } ||
    missing="$missing prometheus"
if [ -n "$missing" ]; then
    [ "$(id -u)" = 0 ] || skip "needs$missing (apt-get install$missing, as root)"
    # the package's own service must not start (a policy-rc.d, only for this install)
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
    fi
    echo "installing:$missing"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing \
        >"$D/apt.log" 2>&1 ||
        { DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$D/apt.log" 2>&1 &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing \
              >>"$D/apt.log" 2>&1; }
    rc=$?
    [ $own_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ $rc = 0 ] || skip "could not install$missing: $(tail -n 3 "$D/apt.log")"
fi

# ---- free ports: S + W consecutive ones for the job, one for Prometheus --------------------
# below the kernel's ephemeral range (32768 up), where outgoing connections
# take their local ports; a port someone else takes meanwhile: see launch_job
port_free() { ! (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_ports() {
    BASE=""
    for try in 1 2 3 4 5 6 7 8 9 10; do
        b=$(( 10000 + (RANDOM % 2200) * 10 ))
        ok=1
        for ((k = 0; k < 6; k++)); do port_free $((b + k)) || ok=0; done
        [ $ok = 1 ] && { BASE=$b; break; }
    done
    [ -n "$BASE" ] || fail "no free ports found"
    PPORT=$((BASE + 5))
    T="127.0.0.1:$BASE,127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2)),127.0.0.1:$((BASE + 3))"
}
pick_ports

# ---- 6. bad values, before the job -------------------------------------------------------
out=$("$ZPS_BIN/zps-server" --metrics-listen nonsense 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q -- "--metrics-listen" || fail "bad --metrics-listen: rc $rc: $out"
out=$("$ZPS_BIN/zps-worker" --servers tcp://127.0.0.1:1 --metrics-listen 1.2.3:9 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "not an IPv4 address" || fail "worker bad --metrics-listen: rc $rc: $out"
out=$(ZPS_METRICS_LISTEN=:99999 "$ZPS_BIN/zps-server" 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "ZPS_METRICS_LISTEN" || fail "bad ZPS_METRICS_LISTEN: rc $rc: $out"
echo "ok: bad --metrics-listen values refused (also as ZPS_METRICS_LISTEN)"

# ---- the job ---------------------------------------------------------------------------------
"$ZPS_BIN/zps-datagen" ctr --rows 40000 --test-rows 2000 --features 20000 --seed 5 \
    --out "$D/m" >"$D/datagen.out" 2>&1 || fail "datagen failed: $(cat "$D/datagen.out")"
# long enough to outlast the checks; the test stops it.  launch_job: 0 when
# the job runs, 1 when a port was taken between the check and the bind
launch_job() {
    TMPDIR=$D "$ROOT/scripts/zps-launch" --bin "$ZPS_BIN" --servers 2 --workers 2 \
        --metrics-port-base "$BASE" --log-dir "$D/logs" -- --model lr --train "$D/m.train" \
        --epochs 100000 --batch 100 --consistency ssp:2 --progress-every 2 \
        >"$D/launch.out" 2>"$D/launch.log" &
    LPID=$!
    PIDS="$PIDS $LPID"
    t=0
    until grep -q "metrics targets (servers, then workers): $T" "$D/launch.log" &&
          grep -q "worker(s) started" "$D/launch.log"; do
        if ! kill -0 $LPID 2>/dev/null; then
            grep -q "cannot serve metrics on" "$D/launch.log" && return 1
            fail "the launcher exited: $(tail -n 5 "$D/launch.log")"
        fi
        t=$((t + 1)); [ $t -gt 300 ] && fail "no metrics targets line in 30 s"
        sleep 0.1
    done
    return 0
}
for try in 1 2 3; do
    launch_job && break
    [ $try = 3 ] && fail "metrics ports taken three times: $(tail -n 5 "$D/launch.log")"
    echo "(a metrics port was taken meanwhile: new ports)"
    rm -rf "$D/logs"
    pick_ports
done
SERVERS=$(sed -n 's/.*server(s) ready: //p' "$D/launch.log" | head -n 1)
echo "ok: the launcher printed the targets $T"

# scrape TARGET FILE: the body in FILE, the headers in FILE.h (fails on an error)
scrape() { curl -sS --max-time 5 -D "$2.h" -o "$2" "http://$1/metrics" || fail "scrape of $1 failed"; }
# val FILE NAME: the value of the sample whose name and labels start the line with NAME
val() { awk -v n="$2" 'index($0, n " ") == 1 || index($0, n "{") == 1 { print $NF; exit }' "$1"; }
# every endpoint up, each server's snapshot has keys, each worker's examples
# (snapshots are published every 100 ms, each daemon on its own)
for k in 0 1 2 3; do
    t=0
    if [ $k -lt 2 ]; then m=zps_keys_stored; else m=zps_worker_examples_total; fi
    until curl -s --max-time 2 "http://127.0.0.1:$((BASE + k))/metrics" >"$D/w.$k" 2>/dev/null &&
          [ -n "$(val "$D/w.$k" $m)" ] && [ "$(val "$D/w.$k" $m)" != 0 ]; do
        t=$((t + 1)); [ $t -gt 300 ] && fail "endpoint $((BASE + k)) not up (or no $m) in 30 s"
        sleep 0.1
    done
done

# ---- 1. format, names, promtool ------------------------------------------------------
for k in 0 1 2 3; do
    scrape "127.0.0.1:$((BASE + k))" "$D/a.$k"
    grep -qi '^Content-Type: text/plain; version=0.0.4; charset=utf-8' "$D/a.$k.h" ||
        fail "Content-Type of $((BASE + k)): $(cat "$D/a.$k.h")"
    promtool check metrics <"$D/a.$k" >"$D/promtool.$k" 2>&1 ||
        fail "promtool check metrics on $((BASE + k)): $(cat "$D/promtool.$k")"
done
for k in 0 1; do
    grep -q "^zps_info{role=\"server\",rank=\"$k\",version=\"" "$D/a.$k" || fail "server $k: no zps_info"
    for m in zps_pushes_total zps_pulls_total zps_keys_pushed_total zps_keys_pulled_total \
             zps_keys_stored zps_table_bytes zps_held_pulls zps_staleness_clocks \
             zps_duplicate_pushes_total zps_connected_peers zps_start_time_seconds \
             'zps_rejected_requests_total{reason="limit"}' \
             'zps_request_duration_seconds_bucket{type="push",le="+Inf"}' \
             'zps_request_duration_seconds_count{type="pull"}' \
             'zps_worker_lag_clocks{worker="0"}' 'zps_worker_lag_clocks{worker="1"}'; do
        [ -n "$(val "$D/a.$k" "$m")" ] || fail "server $k: no $m"
    done
    [ "$(val "$D/a.$k" zps_keys_stored)" -gt 0 ] || fail "server $k: no keys stored"
done
for k in 2 3; do
    r=$((k - 2))
    grep -q "^zps_info{role=\"worker\",rank=\"$r\",version=\"" "$D/a.$k" || fail "worker $r: no zps_info"
    for m in zps_worker_examples_total zps_worker_examples_per_second zps_worker_train_loss \
             zps_worker_holdout_loss zps_worker_epoch zps_worker_epoch_progress_ratio \
             zps_worker_progress_ratio zps_worker_sent_bytes_total zps_worker_pushes_acked_total \
             zps_worker_clock; do
        [ -n "$(val "$D/a.$k" "$m")" ] || fail "worker $r: no $m"
    done
    [ "$(val "$D/a.$k" zps_worker_epoch)" -ge 1 ] || fail "worker $r: epoch $(val "$D/a.$k" zps_worker_epoch)"
done
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$BASE/other")
[ "$code" = 404 ] || fail "GET /other: $code, expected 404"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x "http://127.0.0.1:$BASE/metrics")
[ "$code" = 405 ] || fail "POST /metrics: $code, expected 405"
if command -v ss >/dev/null 2>&1; then
    l=$(ss -ltnH "sport = :$BASE")
    echo "$l" | grep -q "127.0.0.1:$BASE" || fail "metrics port $BASE not on 127.0.0.1: $l"
fi
echo "ok: 4 endpoints, text format 0.0.4, promtool check metrics passes, 404/405, loopback only"

# ---- 2. counters grow --------------------------------------------------------------------
sleep 1.5
for k in 0 1 2 3; do scrape "127.0.0.1:$((BASE + k))" "$D/b.$k"; done
grows() { # FILE-A FILE-B NAME
    a=$(val "$1" "$3"); b=$(val "$2" "$3")
    awk -v a="$a" -v b="$b" 'BEGIN { exit !(b > a) }' || fail "$3 did not grow: $a -> $b ($1, $2)"
}
for k in 0 1; do
    grows "$D/a.$k" "$D/b.$k" zps_pushes_total
    grows "$D/a.$k" "$D/b.$k" zps_pulls_total
    grows "$D/a.$k" "$D/b.$k" zps_keys_pushed_total
    grows "$D/a.$k" "$D/b.$k" 'zps_request_duration_seconds_count{type="push"}'
done
for k in 2 3; do
    grows "$D/a.$k" "$D/b.$k" zps_worker_examples_total
    grows "$D/a.$k" "$D/b.$k" zps_worker_sent_bytes_total
done
echo "ok: counters grow (pushes $(val "$D/a.0" zps_pushes_total) -> $(val "$D/b.0" zps_pushes_total) on server 0)"

# ---- 3. a real Prometheus ------------------------------------------------------------------
mkdir -p "$D/prom"
cat >"$D/prom/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: zps
    static_configs:
      - targets: ['127.0.0.1:$BASE', '127.0.0.1:$((BASE + 1))', '127.0.0.1:$((BASE + 2))', '127.0.0.1:$((BASE + 3))']
EOF
promtool check config "$D/prom/prometheus.yml" >"$D/prom/check.out" 2>&1 ||
    fail "promtool check config: $(cat "$D/prom/check.out")"
prometheus --config.file="$D/prom/prometheus.yml" --storage.tsdb.path="$D/prom/data" \
    --web.listen-address="127.0.0.1:$PPORT" >"$D/prometheus.log" 2>&1 &
PPID_=$!
PIDS="$PIDS $PPID_"
t=0
while :; do
    q=$(curl -s --max-time 2 "http://127.0.0.1:$PPORT/api/v1/query?query=zps_pushes_total" || true)
    n=$(printf '%s' "$q" | grep -o '"__name__":"zps_pushes_total"' | wc -l)
    [ "$n" = 2 ] && break
    kill -0 $PPID_ 2>/dev/null || fail "prometheus exited: $(tail -n 5 "$D/prometheus.log")"
    t=$((t + 1)); [ $t -gt 60 ] && fail "Prometheus has no zps_pushes_total of both servers after 60 s: $q"
    sleep 1
done
echo "ok: Prometheus scraped the job and answers zps_pushes_total (2 series)"
# every query of the Grafana dashboard is valid PromQL and finds data (once
# Prometheus has two samples of every target, so rate() has something)
pq() { curl -s --max-time 5 -G "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1"; }
t=0
until pq 'count(rate(zps_pushes_total[30s]) > 0) + count(rate(zps_worker_examples_total[30s]) > 0)' |
      grep -q '"value":\[[0-9.]*,"4"\]'; do
    t=$((t + 1)); [ $t -gt 30 ] && fail "Prometheus has no rates of the 4 targets after 30 s"
    sleep 1
done
q=$(curl -s --max-time 2 "http://127.0.0.1:$PPORT/api/v1/query?query=count(up%7Bjob%3D%22zps%22%7D%3D%3D1)")
printf '%s' "$q" | grep -q '"value":\[[0-9.]*,"4"\]' || fail "Prometheus does not see 4 targets up: $q"
echo "ok: Prometheus sees 4 targets up, with rates"
nq=0
while IFS= read -r e; do
    e=$(printf '%s' "$e" | sed -e 's/\\"/"/g' -e 's/\$job/.*/g' -e 's/\$__rate_interval/30s/g')
    q=$(pq "$e")
    printf '%s' "$q" | grep -q '"status":"success"' || fail "dashboard query failed: $e: $q"
    case $e in *test_loss*|*holdout_loss*|*rejected*|*retries*|*duplicate*) ;;
        *) printf '%s' "$q" | grep -q '"result":\[{' || fail "dashboard query has no data: $e: $q" ;;
    esac
    nq=$((nq + 1))
done < <(sed -n 's/^ *"expr": "\(.*\)",\{0,1\}$/\1/p' "$ROOT/docs/grafana-zps.json")
[ $nq -ge 15 ] || fail "only $nq queries found in docs/grafana-zps.json"
kill -TERM $PPID_; wait $PPID_ 2>/dev/null
echo "ok: the $nq queries of docs/grafana-zps.json run on that Prometheus"

# ---- 4. zps-ctl top --once -----------------------------------------------------------
"$ZPS_BIN/zps-ctl" top --once --metrics "$T" >"$D/top.out" 2>&1 || fail "zps-ctl top --once: $(cat "$D/top.out")"
for l in "server  0 " "server  1 " "worker  0 " "worker  1 "; do
    grep -q "^$l" "$D/top.out" || fail "zps-ctl top: no line '$l': $(cat "$D/top.out")"
done
grep -q "^DOWN" "$D/top.out" && fail "zps-ctl top: a target down: $(cat "$D/top.out")"
grep -q "4 of 4 targets up" "$D/top.out" || fail "zps-ctl top: $(cat "$D/top.out")"
# ssp: every worker's clock lag, from the servers, is a number
[ "$(awk '$1 == "worker" && $9 ~ /^[0-9]+$/' "$D/top.out" | wc -l)" = 2 ] ||
    fail "zps-ctl top: no clock lag per worker: $(cat "$D/top.out")"
"$ZPS_BIN/zps-ctl" top --once --metrics "127.0.0.1:$PPORT" >"$D/top2.out" 2>&1
[ $? = 1 ] && grep -q "^DOWN" "$D/top2.out" || fail "zps-ctl top on a dead target: $(cat "$D/top2.out")"
echo "ok: zps-ctl top --once shows 2 servers and 2 workers"

# ---- 5. hostile scrapers -----------------------------------------------------------------
stats_pushes() { "$ZPS_BIN/zps-ctl" --servers "$SERVERS" --timeout 5 stats --server 0 2>/dev/null |
                 sed -n 's/^server=0 .* pushes=\([0-9]*\) .*/\1/p'; }
p0=$(stats_pushes)
[ -n "$p0" ] || fail "zps-ctl stats --server 0 gave nothing"
e0=$(val "$D/b.2" zps_worker_examples_total)
FDS=()
for _ in $(seq 1 20); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$BASE" 2>/dev/null || continue
    printf 'GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ' 1>&"$fd" 2>/dev/null
    FDS+=("$fd")
done
printf '\x00\xff\x01garbage \r\n\r\n' >"/dev/tcp/127.0.0.1/$((BASE + 1))" 2>/dev/null
sleep 2
for fd in "${FDS[@]}"; do printf 'a' 1>&"$fd" 2>/dev/null; done  # still dribbling
# the connection cap holds: a 21st scraper is not served while they hang on
curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$BASE/metrics" &&
    fail "server 0's endpoint served a scrape past its connection limit"
p1=$(stats_pushes)
scrape "127.0.0.1:$((BASE + 2))" "$D/c.2"
e1=$(val "$D/c.2" zps_worker_examples_total)
[ -n "$p1" ] && [ "$p1" -gt "$p0" ] || fail "server 0's pushes stalled under slowloris: $p0 -> $p1"
awk -v a="$e0" -v b="$e1" 'BEGIN { exit !(b > a) }' || fail "training stalled under slowloris: $e0 -> $e1"
scrape "127.0.0.1:$((BASE + 1))" "$D/c.1"   # the garbage did not hurt server 1's endpoint
for fd in "${FDS[@]}"; do exec {fd}>&-; done
t=0
until curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$BASE/metrics"; do
    t=$((t + 1)); [ $t -gt 15 ] && fail "server 0's endpoint did not recover after the slowloris closed"
    sleep 1
done
echo "ok: ${#FDS[@]} slowloris connections and garbage: server 0 pushes $p0 -> $p1, worker 0 examples $e0 -> $e1, endpoint back"

# ---- 6. a port in use ----------------------------------------------------------------------
out=$("$ZPS_BIN/zps-server" --metrics-listen "127.0.0.1:$BASE" 2>&1); rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "cannot serve metrics on 127.0.0.1:$BASE" ||
    fail "metrics port in use: rc $rc: $out"
out=$(timeout 20 "$ZPS_BIN/zps-worker" --servers tcp://127.0.0.1:1 --rank 0 --num-workers 1 \
      --model lr --train "$D/m.train" --metrics-listen ":$((BASE + 2))" 2>&1); rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "cannot serve metrics on 127.0.0.1:$((BASE + 2))" ||
    fail "worker metrics port in use: rc $rc: $out"
echo "ok: a metrics port in use is an error naming it (server and worker)"

# ---- stop the job ----------------------------------------------------------------------------
kill -TERM $LPID
wait_exit $LPID 30 >/dev/null
t=0
while pgrep -f "$D/m.train" >/dev/null; do
    t=$((t + 1)); [ $t -gt 100 ] && fail "processes left after the launcher stopped: $(pgrep -af "$D/m.train")"
    sleep 0.1
done
echo "it_metrics: passed"
