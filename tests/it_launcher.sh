#!/bin/bash
# zps-launch itself, without real ssh: a fake remote shell that runs the
# command here (`sh -c`), hosts 127.0.0.1/127.0.0.2, and test doubles of
# zps-server / zps-worker that record what they were given and then run the
# real binaries.
#   1. control channel: a server printing forged launcher control lines
#      (with $(touch ...)) makes the launcher run nothing, on success and on
#      failure;
#   2. input: bad host names, --rsh words (never evaluated, also under
#      --dry-run), slots / integer bounds are errors, not hangs;
#   3. admin token: 64 hex chars in a 0600 file in a 0700 directory, passed
#      as --admin-token-file (only to a server whose --help mentions it),
#      in no process's argv, removed at the end; --no-admin-token;
#   4. --secure: one key pair per worker; a worker host gets only its own;
#   5. logs: a failed job's named log file outlives the launcher; a
#      successful job's default log directory is removed;
#   6. --save-model: a failed or interrupted re-run leaves the previous model
#      byte-identical and a *.zps-partial-* directory with PARTIAL, which
#      zps-predict refuses unless --allow-partial; a good re-run replaces it;
#      the same over the fake remote shell (two hosts, one filesystem).
. "$(dirname "$0")/lib.sh"
ROOT=$(pwd)
D=$TMP
L=${IT_LAUNCHER:-$ROOT/scripts/zps-launch}
# the launcher under test, with its temporary directories in $D
launch() { TMPDIR=$D "$L" "$@"; }

"$ZPS_BIN/zps-datagen" ctr --rows 4000 --test-rows 400 --features 300 --nnz 10 --seed 21 \
    --out "$D/c" >"$D/datagen.out" 2>&1 || fail "datagen failed: $(cat "$D/datagen.out")"
printf '1 3:1 7:1\n1 not-a-feature\n' >"$D/bad.train"
JOB="--model lr --no-cache --epochs 1 --batch 100"

# ---- test doubles ----------------------------------------------------------------------------
# a remote shell that runs the command here: [--] HOST COMMAND
cat >"$D/rsh" <<'EOF'
#!/bin/sh
[ "$1" = -- ] && shift
shift
[ -n "${RSH_LOG:-}" ] && printf '%s\n' "$*" >>"$RSH_LOG"
exec sh -c "$*"
EOF
# a remote shell that records its arguments and fails as ssh does
cat >"$D/argrsh" <<EOF
#!/bin/sh
for a in "\$@"; do printf '%s\n' "\$a"; done >>"$D/argrsh.args"
exit 255
EOF
F=$D/fake
mkdir -p "$F/bin"
# zps-server that takes --admin-token-file (as the next server does): records
# the token file's mode, its directory's mode and its content's form; with
# FAKE_FORGE=1 prints lines forging the launcher's old control prefix; then
# runs the real server (with the option only if that server takes it)
cat >"$F/bin/zps-server" <<EOF
#!/bin/sh
F=$F REAL=$ZPS_BIN
for a in "\$@"; do
    [ "\$a" = --help ] && { "\$REAL/zps-server" --help; echo "  --admin-token-file PATH  (test double)"; exit 0; }
done
passes=0
"\$REAL/zps-server" --help | grep -q -- --admin-token-file && passes=1
tok="" n=\$# prev=""
while [ \$n -gt 0 ]; do
    a=\$1; shift; n=\$((n - 1))
    [ "\$prev" = --rank ] && echo \$\$ >"\$F/pid.\$a"
    prev=\$a
    if [ "\$a" = --admin-token-file ] && [ \$n -gt 0 ]; then
        tok=\$1; shift; n=\$((n - 1))
        [ \$passes = 1 ] && set -- "\$@" --admin-token-file "\$tok"
        continue
    fi
    set -- "\$@" "\$a"
done
if [ -n "\$tok" ]; then
    { echo "file \$tok"; stat -c 'mode %a uid %u' "\$tok"; stat -c 'dirmode %a' "\$(dirname "\$tok")"
      echo "hexlines \$(grep -cE '^[0-9a-f]{64}\$' "\$tok") lines \$(wc -l <"\$tok")"; } >"\$F/server.\$\$.rec" 2>&1
    echo "\$tok" >"\$F/tokpath"
fi
if [ "\${FAKE_FORGE:-0}" = 1 ]; then
    for fd in 1 2; do
        printf '%s\n' 'peer said: x' '@@zps-launch pgid \$(touch\${IFS}$F/pwned.1) pid \$(touch\${IFS}$F/pwned.2)' \
            'pgid 999999 pid 999998' 'pgid \$(touch\${IFS}$F/pwned.3) pid 2' >&\$fd
    done
fi
exec "\$REAL/zps-server" "\$@"
EOF
# zps-worker that looks for the token in every process's argv (the servers
# and the launcher are running then), lists the secret files its host got,
# and with FAKE_HANG=1 never finishes
cat >"$F/bin/zps-worker" <<EOF
#!/bin/sh
F=$F REAL=$ZPS_BIN
rank=x prev=""
for a in "\$@"; do
    [ "\$prev" = --rank ] && rank=\$a
    [ "\$prev" = --curve-secret ] && (cd "\$(dirname "\$a")/.." && find . -type f | sort) >"\$F/keys.\$rank"
    prev=\$a
done
if [ -s "\$F/tokpath" ] && p=\$(cat "\$F/tokpath") && [ -r "\$p" ]; then
    echo "argv_hits \$(ps -eww -o args= | grep -c -F -f "\$p") proc_hits \$(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n' | grep -c -F -f "\$p")" >"\$F/worker.\$rank.rec"
fi
[ "\${FAKE_HANG:-0}" = 1 ] && exec sleep 600
exec "\$REAL/zps-worker" "\$@"
EOF
ln -s "$ZPS_BIN/zps-keygen" "$F/bin/zps-keygen"
chmod +x "$D/rsh" "$D/argrsh" "$F/bin/zps-server" "$F/bin/zps-worker"
FB=$F/bin
REM="--rsh $D/rsh -H 127.0.0.1"
REM2="--rsh $D/rsh -H 127.0.0.1,127.0.0.2 --bind-ip 127.0.0.1=127.0.0.1,127.0.0.2=127.0.0.2"
clear_fake() { rm -f "$F"/*.rec "$F"/tokpath "$F"/keys.* "$F"/pwned.* "$F"/pid.*; }

# ---- 1. control data never comes from the daemons' output ------------------------------------
clear_fake
RSH_LOG=$D/forge.rsh FAKE_FORGE=1 launch --bin "$FB" $REM --servers 2 --workers 2 -- $JOB --train "$D/c.train" \
    >"$D/forge.out" 2>&1 || fail "job with forged control lines failed: $(tail -20 "$D/forge.out")"
ls "$F"/pwned.* >/dev/null 2>&1 && fail "a forged control line ran a command: $(ls "$F"/pwned.*)"
grep -q '^\[server/1@127.0.0.1\] @@zps-launch pgid $(touch' "$D/forge.out" || fail "the forged line was not shown as the server's output"
# the servers were stopped through their real pids, over the remote shell
for i in 0 1; do
    grep -qx "kill -TERM $(cat "$F/pid.$i")" "$D/forge.rsh" || fail "server/$i was not sent SIGTERM by its real pid: $(grep kill "$D/forge.rsh")"
done
# the failure path: every remote process group is stopped over the remote shell
FAKE_FORGE=1 launch --bin "$FB" $REM --servers 2 --workers 2 -- $JOB --train "$D/bad.train" \
    >"$D/forge2.out" 2>&1 && fail "a job with a bad data file succeeded"
ls "$F"/pwned.* >/dev/null 2>&1 && fail "a forged control line ran a command: $(ls "$F"/pwned.*)"
echo "ok: forged control lines in a server's output run nothing (job succeeds, and fails, as it should)"

# ---- 2. input ----------------------------------------------------------------------------------
# expect_err WHAT PATTERN ARGS...: exits 2 within 10 s, saying PATTERN
expect_err() {
    local what=$1 pat=$2 rc; shift 2
    timeout 10 env TMPDIR="$D" "$L" "$@" >"$D/err.out" 2>&1; rc=$?
    [ $rc = 2 ] || fail "$what: exit $rc, 2 expected: $(tail -3 "$D/err.out")"
    grep -q -- "$pat" "$D/err.out" || fail "$what: no '$pat' in: $(cat "$D/err.out")"
}
expect_err "a host starting with -" "not a host name" -H '-oProxyCommand=touch_x' --dry-run -- $JOB
expect_err "a host with ;" "not a host name" -H '127.0.0.1;touch x' --dry-run -- $JOB
printf 'node1\n-oProxyCommand=x slots=2\n' >"$D/hf.dash"
expect_err "a hostfile host starting with -" "hf.dash:2: '-oProxyCommand=x' is not a host name" --hostfile "$D/hf.dash" --dry-run -- $JOB
expect_err "--server-hosts with a space" "not a host name" --server-hosts 'a b' --dry-run -- $JOB
printf 'node1 slots=100000000\n' >"$D/hf.big"
expect_err "slots=100000000" "slots must be in 1..4096" --hostfile "$D/hf.big" --dry-run -- $JOB
printf 'node1 slots=0\n' >"$D/hf.zero"
expect_err "slots=0" "slots must be in 1..4096" --hostfile "$D/hf.zero" --dry-run -- $JOB
printf 'node1 slots=x1\n' >"$D/hf.word"
expect_err "slots=x1" "slots needs a whole number" --hostfile "$D/hf.word" --dry-run -- $JOB
expect_err "--servers 1x" "--servers needs a whole number" --servers 1x --dry-run -- $JOB
expect_err "--servers huge" "--servers" --servers 99999999999999999999 --dry-run -- $JOB
expect_err "--workers 0" "--workers must be in 1..65536" --workers 0 --dry-run -- $JOB
expect_err "--timeout -1" "--timeout needs a whole number" --timeout -1 --dry-run -- $JOB
expect_err "--port-base 70000" "--port-base must be in 1..65535" --port-base 70000 --dry-run -- $JOB
expect_err "--restart-workers 1e3" "--restart-workers needs a whole number" --restart-workers 1e3 --dry-run -- $JOB
expect_err "--env with a bad name" "--env needs NAME=VALUE" --env 'A;B=1' --dry-run -- $JOB
expect_err "--bind-ip 1.2.3.999" "not an IPv4 address" --bind-ip 1.2.3.999 --dry-run -- $JOB
expect_err "--interface with ;" "not an interface name" -H node1 --interface 'eth0;x' --dry-run -- $JOB
expect_err "an open quote in --rsh" "a quote is not closed" --rsh "ssh -o 'x" -H node1 --dry-run -- $JOB
printf 'node1 slots=4096\n' >"$D/hf.max"
launch --hostfile "$D/hf.max" --bind-ip 10.0.0.1 --port-base 08 --dry-run -- $JOB >"$D/max.out" 2>&1 ||
    fail "slots=4096 / --port-base 08 refused: $(tail -3 "$D/max.out")"
grep -q -- "--bind tcp://10.0.0.1:8 " "$D/max.out" || fail "--port-base 08 is not port 8: $(grep -- --bind "$D/max.out" | head -1)"
# --rsh: words, never evaluated; ssh gets -- before the host
launch --rsh "sh \$(touch $D/pwned.rsh) \`touch $D/pwned.rsh2\`" -H 127.0.0.1 --dry-run -- $JOB \
    >"$D/rshdry.out" 2>&1 || fail "--dry-run with an odd --rsh failed: $(tail -3 "$D/rshdry.out")"
grep -q "^sh '\$(touch' " "$D/rshdry.out" || fail "--rsh was not split into plain words: $(grep '^sh' "$D/rshdry.out" | head -1 | cut -c1-120)"
launch --rsh "$D/argrsh \$(touch $D/pwned.rsh3) 'a b' \"c\\\"d\" ~/e" -H 127.0.0.1 --servers 1 --workers 1 \
    --no-admin-token -- $JOB --train "$D/c.train" >"$D/rshrun.out" 2>&1 && fail "a job over a failing --rsh succeeded"
ls "$D"/pwned.rsh* >/dev/null 2>&1 && fail "--rsh was evaluated: $(ls "$D"/pwned.rsh*)"
[ "$(sed -n 1,4p "$D/argrsh.args" | tr '\n' '|')" = "\$(touch|$D/pwned.rsh3)|a b|c\"d|" ] ||
    fail "--rsh words: $(head -4 "$D/argrsh.args" | tr '\n' '|')"
[ "$(sed -n 5p "$D/argrsh.args")" = "$HOME/e" ] || fail "--rsh: a leading ~/ is not \$HOME/: $(sed -n 5p "$D/argrsh.args")"
launch -H 127.0.0.1 --dry-run -- $JOB >"$D/sshdry.out" 2>&1 || fail "--dry-run with ssh failed"
grep -q "^ssh -o BatchMode=yes .* -- 127.0.0.1 'cd " "$D/sshdry.out" || fail "no -- before the host for ssh: $(grep '^ssh' "$D/sshdry.out" | head -1 | cut -c1-160)"
echo "ok: bad hosts, slots, integers, --env, --bind-ip, --interface are refused; --rsh is split into words, never run"

# ---- 3. the admin token -----------------------------------------------------------------------
clear_fake
launch --bin "$FB" --servers 2 --workers 2 -- $JOB --train "$D/c.train" >"$D/tok.out" 2>&1 ||
    fail "job with the admin token failed: $(tail -20 "$D/tok.out")"
[ "$(ls "$F"/server.*.rec 2>/dev/null | wc -l)" = 2 ] || fail "the servers were not given --admin-token-file: $(grep launcher "$D/tok.out")"
for r in "$F"/server.*.rec; do
    grep -q "^mode 600 uid $(id -u)$" "$r" && grep -q "^dirmode 700$" "$r" && grep -q "^hexlines 1 lines 1$" "$r" ||
        fail "token file: $(cat "$r")"
done
tf=$(cat "$F/tokpath")
[ ! -e "$tf" ] || fail "the token file $tf is still there after the job"
for r in 0 1; do
    [ "$(cat "$F/worker.$r.rec" 2>/dev/null)" = "argv_hits 0 proc_hits 0" ] ||
        fail "the token is on a command line while worker $r starts: $(cat "$F/worker.$r.rec" 2>/dev/null)"
done
# remote: copied into the host's own directory, same checks
clear_fake
launch --bin "$FB" $REM --servers 1 --workers 1 -- $JOB --train "$D/c.train" >"$D/rtok.out" 2>&1 ||
    fail "remote job with the admin token failed: $(tail -20 "$D/rtok.out")"
r=$(ls "$F"/server.*.rec)
grep -q "^file $D/zps-launch\.[^/]*/host-0/admin-token$" "$r" && grep -q "^mode 600 " "$r" &&
    grep -q "^dirmode 700$" "$r" && grep -q "^hexlines 1 lines 1$" "$r" || fail "remote token file: $(cat "$r")"
[ "$(cat "$F/worker.0.rec")" = "argv_hits 0 proc_hits 0" ] || fail "remote: token on a command line: $(cat "$F/worker.0.rec")"
[ ! -e "$(cat "$F/tokpath")" ] && [ -z "$(ls -d "$D"/zps-launch.* 2>/dev/null)" ] || fail "the remote job directory was left behind"
# --dry-run shows the option, never a token; --no-admin-token drops it; a
# server whose --help does not mention it does not get it
launch --bin "$FB" --dry-run --servers 2 -- $JOB >"$D/tokdry.out" 2>&1 || fail "--dry-run failed"
[ "$(grep -c -- "--admin-token-file '<job-dir>/admin-token'" "$D/tokdry.out")" = 2 ] || fail "--dry-run: no --admin-token-file: $(cat "$D/tokdry.out")"
grep -qE '[0-9a-f]{64}' "$D/tokdry.out" && fail "--dry-run shows a token"
launch --bin "$FB" --dry-run --no-admin-token -- $JOB >"$D/notok.out" 2>&1 || fail "--dry-run --no-admin-token failed"
grep -q -- --admin-token-file "$D/notok.out" && fail "--no-admin-token still passes --admin-token-file"
launch --dry-run -- $JOB >"$D/realtok.out" 2>&1 || fail "--dry-run with the real binaries failed"
if "$ZPS_BIN/zps-server" --help | grep -q -- --admin-token-file; then
    grep -q -- "--admin-token-file" "$D/realtok.out" || fail "the server takes --admin-token-file but is not given it"
else
    grep -q -- "--admin-token-file" "$D/realtok.out" && fail "--admin-token-file given to a server that does not take it"
fi
echo "ok: admin token: 0600 file in a 0700 job directory (here and on a host), in no argv, removed at the end"

# ---- 4. --secure: a key pair per worker ---------------------------------------------------------
launch --secure --servers 2 --workers 2 --log-dir "$D/sec" -- $JOB --train "$D/c.train" >"$D/sec.out" 2>&1 ||
    fail "--secure job failed: $(tail -20 "$D/sec.out")"
grep -q "CURVE on: 3 client keys allowed" "$D/sec/server.0.log" ||
    fail "--secure: the servers should allow worker-0, worker-1 and admin: $(grep CURVE "$D/sec/server.0.log")"
launch --secure --dry-run --workers 2 -- $JOB >"$D/secdry.out" 2>&1 || fail "--secure --dry-run failed"
grep -q -- "--rank 1 --num-workers 2 --curve-secret '<job-dir>/keys/worker-1.key' --server-public '<job-dir>/keys/server.pub'" "$D/secdry.out" ||
    fail "--secure: worker 1 does not get its own key: $(grep 'zps-worker' "$D/secdry.out" | tail -1)"
clear_fake
launch --bin "$FB" $REM2 --secure --servers 1 --workers 2 -- $JOB --train "$D/c.train" >"$D/rsec.out" 2>&1 ||
    fail "remote --secure job failed: $(tail -20 "$D/rsec.out")"
[ "$(tr '\n' ' ' <"$F/keys.0")" = "./admin-token ./keys/allow/admin.pub ./keys/allow/worker-0.pub ./keys/allow/worker-1.pub ./keys/server.key ./keys/server.pub ./keys/worker-0.key " ] ||
    fail "host 1 (server 0, worker 0) got: $(tr '\n' ' ' <"$F/keys.0")"
[ "$(tr '\n' ' ' <"$F/keys.1")" = "./keys/server.pub ./keys/worker-1.key " ] ||
    fail "host 2 (worker 1 only) got: $(tr '\n' ' ' <"$F/keys.1")"
echo "ok: --secure makes a key pair per worker; a worker-only host gets its worker's key and the servers' public key only"

# ---- 5. logs outlive failures ---------------------------------------------------------------------
launch --servers 1 --workers 1 -- $JOB --train "$D/bad.train" >"$D/lf.out" 2>&1 && fail "bad data succeeded"
lf=$(sed -n 's/.*last lines of its log (\(.*\)):$/\1/p' "$D/lf.out" | head -1)
[ -n "$lf" ] && [ -s "$lf" ] || fail "the log named by the launcher ($lf) is not there after it exited"
case $lf in "$D"/zps-logs-*/worker.0.log) ;; *) fail "default log directory: $lf" ;; esac
grep -q "the logs of this job are in $(dirname "$lf")" "$D/lf.out" || fail "the kept log directory is not named"
rm -rf "$D"/zps-logs-*
launch --servers 1 --workers 1 -- $JOB --train "$D/c.train" >"$D/lok.out" 2>&1 || fail "job failed: $(tail "$D/lok.out")"
[ -z "$(ls -d "$D"/zps-logs-* 2>/dev/null)" ] || fail "a successful job left its default log directory"
echo "ok: a failed job's log ($lf) is there after the launcher exits; a good job's default logs are removed"

# ---- 6. --save-model never destroys the previous model ---------------------------------------------
M=$D/model
launch --servers 2 --workers 2 --save-model "$M/" -- $JOB --train "$D/c.train" --lr 0.1 >"$D/m1.out" 2>&1 ||
    fail "first model job failed: $(tail -20 "$D/m1.out")"
[ -f "$M/manifest" ] && [ -f "$M/shard-1-of-2.bin" ] && [ ! -e "$M/PARTIAL" ] || fail "first model incomplete: $(ls "$M")"
cp -a "$M" "$D/model.copy"
[ -z "$(ls -d "$M".zps-* 2>/dev/null)" ] || fail "staging left after success: $(ls -d "$M".zps-*)"
# a worker fails: previous model untouched, staging marked PARTIAL
launch --servers 2 --workers 2 --save-model "$M" -- $JOB --train "$D/bad.train" >"$D/m2.out" 2>&1 &&
    fail "a job with bad data succeeded"
diff -r "$D/model.copy" "$M" >/dev/null || fail "the failed job changed the previous model"
P=$(ls -d "$M".zps-partial-*)
[ "$(echo "$P" | wc -w)" = 1 ] && [ -f "$P/PARTIAL" ] || fail "no single staging dir with PARTIAL: $P"
grep -q "worker/. failed (exit status 1)" "$P/PARTIAL" || fail "PARTIAL does not say why: $(cat "$P/PARTIAL")"
grep -q "what the servers saved is in $P" "$D/m2.out" || fail "the launcher did not say where the partial model is"
"$ZPS_BIN/zps-predict" --model "$P" --data "$D/c.test" --out "$D/p.pred" >"$D/pp.out" 2>&1 &&
    fail "zps-predict scored a PARTIAL model"
grep -q "is a partial model" "$D/pp.out" || fail "zps-predict's refusal is not clear: $(cat "$D/pp.out")"
"$ZPS_BIN/zps-predict" --model "$P" --data "$D/c.test" --out "$D/p.pred" --allow-partial >"$D/pp.out" 2>&1 ||
    fail "zps-predict --allow-partial refused: $(cat "$D/pp.out")"
"$ZPS_BIN/zps-predict" --model "$M" --data "$D/c.test" --out "$D/m.pred" >/dev/null 2>&1 || fail "the previous model no longer scores"
rm -rf "$P"
# interrupted (SIGTERM to the launcher) while the workers run: the same
(TMPDIR=$D FAKE_HANG=1 exec "$L" --bin "$FB" --servers 2 --workers 1 --save-model "$M" -- $JOB \
    --train "$D/c.train" >"$D/m3.out" 2>&1) &
lp=$!
PIDS="$PIDS $lp"
t=0
until grep -q "1 worker(s) started" "$D/m3.out" 2>/dev/null; do
    t=$((t + 1)); [ $t -gt 300 ] && fail "the hanging job did not start: $(tail -5 "$D/m3.out")"; sleep 0.1
done
P=$(ls -d "$M".zps-partial-*)
[ -f "$P/PARTIAL" ] || fail "no PARTIAL in the staging directory while the job runs"
kill -TERM $lp
wait_exit $lp 30; rc=$?
[ $rc = 130 ] || fail "the interrupted launcher exited $rc, not 130"
diff -r "$D/model.copy" "$M" >/dev/null || fail "the interrupted job changed the previous model"
grep -q "interrupted" "$P/PARTIAL" || fail "PARTIAL after an interrupt: $(cat "$P/PARTIAL")"
rm -rf "$P"
# a good re-run replaces the model
launch --servers 2 --workers 2 --save-model "$M" -- $JOB --train "$D/c.train" --lr 0.5 >"$D/m4.out" 2>&1 ||
    fail "the good re-run failed: $(tail -20 "$D/m4.out")"
cmp -s "$D/model.copy/shard-0-of-2.bin" "$M/shard-0-of-2.bin" && fail "the good re-run did not replace the model"
grep -q -- "--lr 0.5" "$M/manifest" && [ ! -e "$M/PARTIAL" ] || fail "the new model is not in place: $(cat "$M/manifest")"
[ -z "$(ls -d "$M".zps-* 2>/dev/null)" ] || fail "left after the good re-run: $(ls -d "$M".zps-*)"
"$ZPS_BIN/zps-predict" --model "$M" --data "$D/c.test" --out "$D/m.pred" >/dev/null 2>&1 || fail "the new model does not score"
echo "ok: --save-model: failed and interrupted re-runs leave the previous model byte-identical and a PARTIAL staging dir (refused by zps-predict unless --allow-partial); a good re-run replaces it"
# over the remote shell: two hosts, one filesystem (as with a shared directory)
RM=$D/rmodel
launch $REM2 --servers 2 --workers 2 --save-model "$RM" -- $JOB --train "$D/c.train" >"$D/r1.out" 2>&1 ||
    fail "remote model job failed: $(tail -20 "$D/r1.out")"
[ -f "$RM/shard-0-of-2.bin" ] && [ -f "$RM/shard-1-of-2.bin" ] && [ ! -e "$RM/PARTIAL" ] || fail "remote model: $(ls "$RM")"
cp -a "$RM" "$D/rmodel.copy"
launch $REM2 --servers 2 --workers 2 --save-model "$RM" -- $JOB --train "$D/bad.train" >"$D/r2.out" 2>&1 &&
    fail "a remote job with bad data succeeded"
diff -r "$D/rmodel.copy" "$RM" >/dev/null || fail "the failed remote job changed the previous model"
P=$(ls -d "$RM".zps-partial-*)
grep -q "failed" "$P/PARTIAL" || fail "remote PARTIAL: $(cat "$P/PARTIAL" 2>&1)"
grep -q "what the servers saved is in $P (on 127.0.0.1 127.0.0.2)" "$D/r2.out" || fail "the launcher did not name the hosts: $(grep save-model "$D/r2.out")"
echo "ok: --save-model over the remote shell: renamed on the server hosts on success, PARTIAL on failure"
echo "it_launcher: ok"
