#!/bin/sh
# Open MPI: `zps-launch --mpi` runs a whole job as one mpirun over ssh on
# three test hosts (network namespaces with sshd, tests/netns.sh).
#   1. --dry-run prints the one mpirun (an app context per process, servers
#      first) and starts nothing;
#   2. lr, 2 servers + 3 workers: mpirun exits 0, the servers bound their
#      hosts' eth0 addresses and ended by themselves (--exit-when-done),
#      the saved model reaches the quality bar of tests/it_train.sh, and
#      nothing is left on any host;
#   3. a worker killed (-9) mid-job: mpirun aborts the job, the launcher
#      exits non-zero, --save-model is left PARTIAL, nothing is left.
# Needs root, `ip netns`, sshd and Open MPI's mpirun (installed from Debian
# here if missing); skipped (77) otherwise.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"
ROOT=$(pwd)
D=$TMP
CTR_ARGS="--rows 200000 --test-rows 20000 --features 1000 --nnz 40"
LR_OPTS="--optimizer ftrl --lr 0.1 --epochs 3"

metric() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' "$2"; }
truth() { sed -n "s/^$1=//p" "$2.truth"; }
check() {
    if awk "BEGIN { exit !($2) }"; then echo "ok: $1"; else fail "$1 ($2)"; fi
}
wait_line() {
    t=0
    until grep -q "$2" "$1" 2>/dev/null; do
        t=$((t + 1))
        [ $t -gt $(($3 * 10)) ] && fail "no '$2' in $1 after $3 s: $(tail -5 "$1")"
        sleep 0.1
    done
}

netns_check
if ! command -v mpirun >/dev/null 2>&1; then
    echo "installing openmpi-bin (Debian's Open MPI) for this test"
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openmpi-bin \
          >"$TMP/apt.log" 2>&1 ||
      { apt-get update -qq >>"$TMP/apt.log" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openmpi-bin \
          >>"$TMP/apt.log" 2>&1; }; } || netns_skip "no mpirun, and apt-get install openmpi-bin failed: $(tail -3 "$TMP/apt.log")"
fi
command -v mpirun >/dev/null 2>&1 || netns_skip "no mpirun (openmpi-bin)"
netns_up 3
netns_sshd

nothing_left() {
    t=0
    while [ -n "$(netns_procs_left)" ]; do
        t=$((t + 1))
        [ $t -gt 100 ] && fail "$1: processes left on the test hosts: $(netns_procs_left)"
        sleep 0.1
    done
    echo "ok: $1: nothing left running on any host"
}

HF=$D/hostfile
printf 'zpsh1\nzpsh2\nzpsh3\n' >"$HF"
# mpirun's daemons (orted) reach mpirun over the bridge only, and are all
# started from here (no tree spawn: the ssh config is this test's)
MPI_ARGS="--mca oob_tcp_if_include $SUB.0/24 --mca plm_rsh_no_tree_spawn 1"
launch() {
    "$ROOT/scripts/zps-launch" --mpi --bin "$ZPS_BIN" --rsh "$RSH" --mpi-args "$MPI_ARGS" "$@"
}
launch_bg() {
    exec "$ROOT/scripts/zps-launch" --mpi --bin "$ZPS_BIN" --rsh "$RSH" --mpi-args "$MPI_ARGS" "$@"
}

"$ZPS_BIN/zps-datagen" ctr $CTR_ARGS --seed 11 --out "$D/ctr" >"$D/datagen.out" 2>&1 ||
    fail "datagen failed: $(cat "$D/datagen.out")"

# ---- 1. --dry-run -----------------------------------------------------------------------
launch --hostfile "$HF" --dry-run --bind-ip "zpsh1=$SUB.11,zpsh2=$SUB.12" --servers 2 --workers 3 \
    --port-base 7300 -- --model lr --train "$D/ctr.train" >"$D/dry.out" 2>&1 ||
    fail "--dry-run failed: $(cat "$D/dry.out")"
grep -q "^mpirun .*--tag-output .*-np 1 --host zpsh1:2 .*zps-run --rank-from OMPI_COMM_WORLD_RANK .*--server-list tcp://$SUB.11:7300,tcp://$SUB.12:7301 " "$D/dry.out" ||
    fail "--dry-run: no mpirun line with both servers: $(cat "$D/dry.out")"
[ "$(grep '^mpirun' "$D/dry.out" | grep -o ' -np 1 --host zpsh[123]:[12] ' | wc -l)" -eq 5 ] ||
    fail "--dry-run: 5 app contexts expected: $(grep '^mpirun' "$D/dry.out")"
[ -z "$(netns_procs_left)" ] || fail "--dry-run started processes: $(netns_procs_left)"
echo "ok: --dry-run prints one mpirun with 5 app contexts and runs nothing"

# ---- 2. lr, 2 servers x 3 workers -------------------------------------------------------------
launch --hostfile "$HF" --interface eth0 --servers 2 --workers 3 --port-base 7300 --log-dir "$D/j1" \
    --metrics-port-base 9300 \
    --save-model "$D/j1.model" --timeout 150 --connect-timeout 30 -- \
    --model lr --train "$D/ctr.train" --test "$D/ctr.test" $LR_OPTS --seed 5 --cache-dir "$D" \
    >"$D/j1.out" 2>&1 || fail "--mpi lr job failed: $(tail -25 "$D/j1.out")"
echo "ok: zps-launch --mpi exited 0 (mpirun exited 0)"
grep -q "listening on tcp://$SUB.11:7300" "$D/j1/server.0.log" &&
    grep -q "listening on tcp://$SUB.12:7301" "$D/j1/server.1.log" ||
    fail "the servers did not bind host 1's and host 2's eth0: $(grep -h listening "$D"/j1/server.*.log)"
grep -q "hello from worker/2 at $SUB.13" "$D/j1/server.0.log" ||
    fail "server/0 on host 1 saw no worker/2 from host 3 ($SUB.13)"
for i in 0 1; do
    grep -q "all 3 workers are done: stopping (--exit-when-done)" "$D/j1/server.$i.log" ||
        fail "server/$i did not end by itself: $(tail -5 "$D/j1/server.$i.log")"
done
grep -q "OMPI_COMM_WORLD_RANK=4 on .*: worker 2 of 3" "$D/j1/worker.2.log" ||
    fail "worker/2 did not take its rank from OMPI_COMM_WORLD_RANK: $(head -3 "$D/j1/worker.2.log")"
grep -q "options from the environment: .*ZPS_BIND=tcp://$SUB.12:7301" "$D/j1/server.1.log" &&
    grep -q "options from the environment: .*ZPS_RANK=2" "$D/j1/worker.2.log" ||
    fail "zps-run did not configure the daemons through ZPS_* variables: $(grep -h environment "$D"/j1/*.log)"
grep -q "metrics on http://$SUB.12:9301/metrics" "$D/j1/server.1.log" &&
    grep -q "metrics on http://$SUB.13:9304/metrics" "$D/j1/worker.2.log" ||
    fail "--metrics-port-base: server/1 not on $SUB.12:9301 or worker/2 not on $SUB.13:9304: $(grep -h 'metrics on' "$D"/j1/*.log)"
echo "ok: servers bound $SUB.11:7300 and $SUB.12:7301, saw worker/2 from $SUB.13, and ended by themselves; metrics on each process's host address, port 9300 + rank"
"$ZPS_BIN/zps-predict" --model "$D/j1.model" --data "$D/ctr.test" --out "$D/j1.pred" --metrics \
    >"$D/j1.metrics" || fail "zps-predict failed on the saved model"
auc=$(metric auc "$D/j1.metrics"); tauc=$(truth test_auc "$D/ctr")
echo "mpi lr 2x3: test AUC $auc, ground truth $tauc"
check "mpi lr AUC within 0.01 of the ground truth" "$auc >= $tauc - 0.01"
nothing_left "after the job"

# ---- 3. a worker killed -9 mid-job ---------------------------------------------------------------
KT=90
launch_bg --hostfile "$HF" --interface eth0 --servers 2 --workers 3 --port-base 7310 --log-dir "$D/k" \
    --save-model "$D/k.model" --timeout $KT -- --model lr --train "$D/ctr.train" $LR_OPTS \
    --epochs 1000 --cache-dir "$D" --progress-every 1 >"$D/k.out" 2>&1 &
LP=$!
PIDS="$PIDS $LP"
wait_line "$D/k.out" "^\[worker/2\] .*ex/s" 60
wp=""
for p in $(ip netns pids "zps${N}h3"); do
    [ "$(cat /proc/$p/comm 2>/dev/null)" = zps-worker ] && wp=$p
done
[ -n "$wp" ] || fail "no zps-worker process on host 3"
kill -KILL "$wp"
wait_exit "$LP" $((KT + 15)); rc=$?
[ $rc -ne 0 ] || fail "the launcher exited 0 after a worker was killed"
grep -q "mpirun failed (exit status" "$D/k.out" || fail "the launcher did not report mpirun's failure: $(tail -15 "$D/k.out")"
[ ! -e "$D/k.model" ] && ls "$D"/k.model.zps-partial-*/PARTIAL >/dev/null 2>&1 ||
    fail "--save-model after a failed job: the model should be left PARTIAL, not renamed"
echo "ok: a killed worker makes the job fail (launcher exit $rc); the model is left PARTIAL"
nothing_left "after the killed worker"
echo "it_mpi: ok"
