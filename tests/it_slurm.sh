#!/bin/sh
# Slurm: a real Slurm cluster on this machine runs the documented batch
# script (docs/deploy/slurm/zps.sbatch, which calls `zps-launch --slurm`).
# The cluster: munged and slurmctld here, and three slurmd "nodes" zn1..zn3,
# each in its own network namespace with its own address (tests/netns.sh),
# proctrack/pgid and task/none (no cgroups needed), everything under this
# test's temporary directory (Debian's slurmctld, slurmd and munge packages,
# installed here if missing).
#   0. `zps-launch --slurm --dry-run` inside an allocation prints both srun
#      steps; servers that cannot start (a bad option) fail the job with a
#      clear message;
#   1. `sbatch --wait` of the batch script, 2 servers + 3 workers on the 3
#      nodes: exit 0, servers on two nodes binding their eth0 addresses, the
#      saved model reaches the quality bar of tests/it_train.sh;
#   2. a second, long job is cancelled (`scancel`) mid-run: the job ends and
#      no process but slurmd is left on any node, and its model is not
#      renamed into place;
#   3. a worker of a third job killed (-9): the worker step fails
#      (--kill-on-bad-exit), the launcher cancels the servers, the job ends
#      FAILED with nothing left on any node.
# Needs root and `ip netns`; skipped (77) otherwise.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"
ROOT=$(pwd)
D=$TMP
CTR_ARGS="--rows 200000 --test-rows 20000 --features 1000 --nnz 40"
LR_OPTS="--model lr --optimizer ftrl --lr 0.1 --epochs 3"

metric() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' "$2"; }
truth() { sed -n "s/^$1=//p" "$2.truth"; }
check() {
    if awk "BEGIN { exit !($2) }"; then echo "ok: $1"; else fail "$1 ($2)"; fi
}

netns_check
need=""
for c in slurmctld slurmd munged sbatch; do
    command -v $c >/dev/null 2>&1 || [ -x /usr/sbin/$c ] || need=1
done
if [ -n "$need" ]; then
    echo "installing slurmctld slurmd slurm-client munge (Debian's Slurm) for this test"
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurmctld slurmd \
          slurm-client munge >"$TMP/apt.log" 2>&1 ||
      { apt-get update -qq >>"$TMP/apt.log" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurmctld slurmd \
          slurm-client munge >>"$TMP/apt.log" 2>&1; }; } ||
        netns_skip "Slurm is not installed and apt-get install slurmctld slurmd munge failed: $(tail -3 "$TMP/apt.log")"
fi
for c in slurmctld slurmd munged sbatch scancel squeue scontrol sinfo nsenter; do
    command -v $c >/dev/null 2>&1 || netns_skip "no '$c' after installing Slurm"
done

MUNGED="" CTLD=""
slurm_down() {
    # the nodes first (netns_down kills everything in them), then the controller and munged
    netns_down
    for p in $CTLD $MUNGED; do kill -TERM "$p" 2>/dev/null; done
    sleep 0.3
    for p in $CTLD $MUNGED; do kill -KILL "$p" 2>/dev/null; done
    return 0
}
NETNS_TRAP=0
trap 'slurm_down; cleanup' EXIT
trap 'exit 1' INT TERM
netns_up 3

# ---- munge and the cluster ----------------------------------------------------------------
M=$TMP/munge
mkdir -m 755 "$M" && dd if=/dev/urandom of="$M/munge.key" bs=1024 count=1 2>/dev/null &&
    chmod 600 "$M/munge.key" || fail "cannot make a munge key"
munged -F --force --socket="$M/munge.sock" --key-file="$M/munge.key" --pid-file="$M/munged.pid" \
    --seed-file="$M/munged.seed" >"$TMP/munged.log" 2>&1 &
MUNGED=$!
t=0
until [ -S "$M/munge.sock" ]; do
    t=$((t + 1)); [ $t -gt 100 ] && fail "munged did not start: $(cat "$TMP/munged.log")"
    sleep 0.1
done

C=$TMP/slurm
mkdir -p "$C/state" && chmod 755 "$TMP" "$C"
PORT=$((16817 + N % 100 * 2))
HOST=$(hostname -s)
cat >"$C/slurm.conf" <<EOF
ClusterName=zpstest$N
SlurmctldHost=$HOST($SUB.1)
SlurmctldPort=$PORT
SlurmdPort=6818
AuthType=auth/munge
AuthInfo=socket=$M/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$C/state
SlurmdSpoolDir=$C/spool.%n
SlurmctldPidFile=$C/slurmctld.pid
SlurmdPidFile=$C/slurmd.%n.pid
SlurmctldLogFile=$C/slurmctld.log
SlurmdLogFile=$C/slurmd.%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
KillWait=5
InactiveLimit=0
MinJobAge=60
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=zn1 NodeAddr=$SUB.11 CPUs=2 State=UNKNOWN
NodeName=zn2 NodeAddr=$SUB.12 CPUs=2 State=UNKNOWN
NodeName=zn3 NodeAddr=$SUB.13 CPUs=2 State=UNKNOWN
PartitionName=zps Nodes=zn1,zn2,zn3 Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$C/slurm.conf
slurmctld -D -i -f "$C/slurm.conf" >"$C/slurmctld.out" 2>&1 &
CTLD=$!
for h in 1 2 3; do
    mkdir -p "$C/spool.zn$h"
    # (nsenter: only the network namespace; `ip netns exec` would remount
    # /sys without the cgroup filesystems, and slurmd 22.05 will not start
    # without them even with proctrack/pgid and task/none)
    nsenter --net="/run/netns/zps${N}h$h" slurmd -D -N "zn$h" -f "$C/slurm.conf" >"$C/slurmd.zn$h.out" 2>&1 &
done
# the slurmd daemons are the only processes the nodes keep
t=0
while [ "$(sinfo -h -p zps -t idle -o '%D' 2>/dev/null)" != 3 ]; do
    t=$((t + 1))
    if [ $t -gt 300 ]; then
        # a machine without cgroup filesystems: slurmd 22.05 cannot start at all
        if grep -qs "Unable to initialize cgroup plugin" "$C"/slurmd.zn*.log; then
            netns_skip "slurmd cannot start here: $(grep -h -m1 -B1 "Unable to initialize cgroup plugin" "$C/slurmd.zn1.log" | tr '\n' ' ')(slurmd 22.05 needs the cgroup filesystems mounted on /sys/fs/cgroup)"
        fi
        sinfo -N >&2 2>&1
        fail "the 3 nodes did not come up idle in 30 s: $(tail -n 5 "$C/slurmctld.log" "$C"/slurmd.zn*.log 2>&1)"
    fi
    sleep 0.1
done
NETNS_KEEP_PIDS=""
for ns in $NSS; do NETNS_KEEP_PIDS="$NETNS_KEEP_PIDS $(ip netns pids "$ns")"; done
echo "ok: a Slurm cluster: slurmctld on $SUB.1:$PORT, slurmd nodes zn1..zn3 at $SUB.11..13 ($(sinfo -h -o '%D %T'))"

procs_left() { netns_procs_left; }
nothing_left() {
    t=0
    while [ -n "$(procs_left)" ]; do
        t=$((t + 1))
        [ $t -gt 200 ] && fail "$1: processes left on the nodes: $(procs_left)"
        sleep 0.1
    done
    echo "ok: $1: nothing but slurmd left on any node"
}

"$ZPS_BIN/zps-datagen" ctr $CTR_ARGS --seed 11 --out "$D/ctr" >"$D/datagen.out" 2>&1 ||
    fail "datagen failed: $(cat "$D/datagen.out")"

SB=$ROOT/docs/deploy/slurm/zps.sbatch
# the batch script's settings (ZJOB_*), as a user would pass them with --export
submit() {
    job=$1; shift
    env ZJOB_ZPS="$ROOT" ZJOB_SERVERS=2 ZJOB_WORKERS=3 ZJOB_INTERFACE=eth0 \
        ZJOB_TRAIN="$D/ctr.train" ZJOB_TEST="$D/ctr.test" ZJOB_MODEL="$D/$job.model" \
        ZJOB_LOGS="$D/$job.logs" ZPS_BIN="$ZPS_BIN" \
        sbatch --chdir "$D" --output "$D/$job.out" "$@" "$SB"
}

# ---- 0. --dry-run inside an allocation; a server that cannot start ------------------------------
sbatch --wait --nodes 3 --chdir "$D" --output "$D/dry.out" --time 2 --wrap \
    "ZPS_BIN=$ZPS_BIN $ROOT/scripts/zps-launch --slurm --dry-run --servers 2 --workers 3 --port-base 7700 --interface eth0 -- --model lr --train $D/ctr.train" \
    >"$D/dry.sbatch" 2>&1 || fail "sbatch of zps-launch --slurm --dry-run failed: $(cat "$D/dry.sbatch" "$D/dry.out")"
grep -q "^env -u SLURM_NTASKS_PER_NODE srun --overlap .*--job-name zps-servers-.* --nodes 2 --ntasks 2 .*zps-run --role server --rank-from SLURM_PROCID " "$D/dry.out" &&
    grep -q "^env -u SLURM_NTASKS_PER_NODE srun --overlap .*--job-name zps-workers-.* --nodes 3 --ntasks 3 .*zps-run --role worker .*--server-list @SERVERS@ " "$D/dry.out" ||
    fail "--slurm --dry-run: no server and worker srun lines: $(cat "$D/dry.out")"
[ -z "$(procs_left)" ] || fail "--dry-run left processes: $(procs_left)"
echo "ok: zps-launch --slurm --dry-run in an allocation prints the two srun steps and runs nothing"
# (twice at most: when one task exits 2, --kill-on-bad-exit ends the step,
# and Slurm's I/O forwarding once dropped the failing task's last line --
# the error -- before srun printed it: 1 run in about 20; the launcher's
# part, tested here, is to show whatever srun prints)
for try in 1 2; do
    if ZJOB_OPTS="--model lr --capacity x" ZJOB_PORT_BASE=7730 submit j0 --wait --time 2 >"$D/j0.sbatch" 2>&1; then
        fail "a job whose servers cannot start succeeded: $(tail -10 "$D/j0.out")"
    fi
    grep -q "launcher: the server step ended (exit status [1-9][0-9]*) before server/[01] reported its address" "$D/j0.out" ||
        fail "no clear message for servers that cannot start: $(tail -15 "$D/j0.out")"
    grep -q "invalid value 'x' for --capacity" "$D/j0.out" && break
    [ $try = 2 ] && fail "the server's own error is not shown (twice): $(tail -15 "$D/j0.out")"
    echo "note: srun did not forward the failing server's error line; submitting once more"
    nothing_left "after servers that could not start (first try)"
done
nothing_left "after servers that could not start"

# ---- 1. the documented batch script, sbatch --wait ----------------------------------------------
ZJOB_OPTS="$LR_OPTS --seed 5 --cache-dir $D --connect-timeout 30" ZJOB_PORT_BASE=7700 \
    ZJOB_METRICS_PORT_BASE=9700 submit j1 --wait --time 3 >"$D/j1.sbatch" 2>&1 ||
    fail "sbatch --wait of $SB failed: $(cat "$D/j1.sbatch"); job output: $(tail -25 "$D/j1.out")"
grep -q "job finished" "$D/j1.out" || fail "the job did not finish: $(tail -20 "$D/j1.out")"
grep -q "listening on tcp://$SUB.11:7700" "$D/j1.logs/server.0.log" &&
    grep -q "listening on tcp://$SUB.12:7701" "$D/j1.logs/server.1.log" ||
    fail "the servers did not bind zn1's and zn2's eth0: $(grep -h listening "$D"/j1.logs/server.*.log)"
grep -q "launcher: servers ran on: zn1 zn2$" "$D/j1.out" ||
    fail "the servers did not run on two nodes: $(grep 'servers ran on' "$D/j1.out")"
grep -q "SLURM_PROCID=2 on zn3: worker 2 of 3" "$D/j1.logs/worker.2.log" ||
    fail "worker/2 not on zn3 with its rank from SLURM_PROCID: $(head -2 "$D/j1.logs/worker.2.log")"
grep -q "hello from worker/2 at $SUB.13" "$D/j1.logs/server.0.log" ||
    fail "server/0 saw no worker/2 from zn3 ($SUB.13)"
grep -q "metrics on http://$SUB.12:9701/metrics" "$D/j1.logs/server.1.log" &&
    grep -q "metrics on http://$SUB.13:9704/metrics" "$D/j1.logs/worker.2.log" ||
    fail "--metrics-port-base: server/1 not on $SUB.12:9701 or worker/2 not on $SUB.13:9704: $(grep -h 'metrics on' "$D"/j1.logs/*.log)"
echo "ok: sbatch --wait $SB: servers on zn1 and zn2 ($SUB.11:7700, $SUB.12:7701), workers on zn1..zn3"
"$ZPS_BIN/zps-predict" --model "$D/j1.model" --data "$D/ctr.test" --out "$D/j1.pred" --metrics \
    >"$D/j1.metrics" || fail "zps-predict failed on the saved model"
auc=$(metric auc "$D/j1.metrics"); tauc=$(truth test_auc "$D/ctr")
echo "slurm lr 2x3: test AUC $auc, ground truth $tauc"
check "slurm lr AUC within 0.01 of the ground truth" "$auc >= $tauc - 0.01"
nothing_left "after the job"

# ---- 2. scancel mid-run ---------------------------------------------------------------------------
out=$(ZJOB_OPTS="$LR_OPTS --epochs 1000 --cache-dir $D --progress-every 1" ZJOB_PORT_BASE=7710 \
    submit j2 --parsable --time 3) || fail "sbatch of the second job failed: $out"
JID=${out%%;*}
case $JID in ''|*[!0-9]*) fail "sbatch --parsable gave '$out'" ;; esac
t=0
until grep -q "^\[worker/2\] .*ex/s" "$D/j2.out" 2>/dev/null; do
    t=$((t + 1))
    [ $t -gt 600 ] && fail "job $JID: no worker progress in 60 s: $(tail -10 "$D/j2.out" 2>&1)"
    sleep 0.1
done
[ -n "$(procs_left)" ] || fail "job $JID runs, but no process was seen on the nodes"
scancel "$JID" || fail "scancel $JID failed"
t=0
while squeue -h -j "$JID" 2>/dev/null | grep -q .; do
    t=$((t + 1))
    [ $t -gt 300 ] && fail "job $JID still in the queue 30 s after scancel: $(squeue -j "$JID")"
    sleep 0.1
done
echo "ok: scancel $JID: the job left the queue"
nothing_left "after scancel"
[ ! -e "$D/j2.model" ] || fail "the cancelled job's model was renamed into place"

# ---- 3. a worker killed (-9) mid-run --------------------------------------------------------------
out=$(ZJOB_OPTS="$LR_OPTS --epochs 1000 --cache-dir $D --progress-every 1" ZJOB_PORT_BASE=7720 \
    submit j3 --parsable --time 3) || fail "sbatch of the third job failed: $out"
JID=${out%%;*}
t=0
until grep -q "^\[worker/2\] .*ex/s" "$D/j3.out" 2>/dev/null; do
    t=$((t + 1))
    [ $t -gt 600 ] && fail "job $JID: no worker progress in 60 s: $(tail -10 "$D/j3.out" 2>&1)"
    sleep 0.1
done
wp=""
for p in $(ip netns pids "zps${N}h3"); do
    [ "$(cat /proc/$p/comm 2>/dev/null)" = zps-worker ] && wp=$p
done
[ -n "$wp" ] || fail "no zps-worker process on zn3"
kill -KILL "$wp"
t=0
while squeue -h -j "$JID" 2>/dev/null | grep -q .; do
    t=$((t + 1))
    [ $t -gt 600 ] && fail "job $JID still in the queue 60 s after its worker was killed: $(tail -5 "$D/j3.out")"
    sleep 0.1
done
grep -q "launcher: the worker step failed (srun exit status [0-9]*): worker/2@zn3 (.*) failed first" "$D/j3.out" ||
    fail "the launcher did not report the failed worker step: $(tail -15 "$D/j3.out")"
st=$(scontrol show job "$JID" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
[ "$st" = FAILED ] || fail "job $JID ended $st, not FAILED, after its worker was killed"
[ ! -e "$D/j3.model" ] || fail "the failed job's model was renamed into place"
echo "ok: a worker killed -9 fails the job ($JID: $st; the launcher: $(sed -n 's/.*launcher: the worker step failed [^:]*: //p' "$D/j3.out"))"
nothing_left "after the killed worker"
echo "it_slurm: ok"
