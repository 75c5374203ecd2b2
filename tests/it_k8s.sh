#!/bin/sh
# The Kubernetes deployment (docs/deploy): what can be checked without a
# cluster.
#  1. scripts/check-k8s: the manifests parse and agree with each other, with
#     make-secrets, with the Containerfile and with zps-server/zps-worker
#     --help; and mutated copies (a misspelt option, a server count that
#     disagrees, a wrong serviceName, the admin token read straight from a
#     Secret volume) are each refused with the right message.
#  2. scripts/check-k8s --schema: every object against the Kubernetes API
#     types (npm: kubernetes-models, kubernetes-types + TypeScript), and a
#     misspelt field refused; skipped without node/npm or the registry.
#  3. What the manifests rely on, with the real daemons in a network
#     namespace whose /etc/hosts we control (root): a worker given a server
#     *name* that does not resolve yet keeps trying and trains once the name
#     resolves and the server is up (pods start in any order); when the
#     server dies and comes back under the same name at another address with
#     --restore (a restarted StatefulSet pod gets a new IP), the worker
#     finds it again and resends what its checkpoint lacks.
#  4. ZPS_IT_K8S_CONTAINER=1 also runs scripts/check-k8s --container (builds
#     the image and runs the pods as containers: minutes, so not by default).
. "$(dirname "$0")/lib.sh"
skip() { echo "SKIP: $*"; exit 77; }

if ! python3 -c 'import yaml' 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing python3-yaml (scripts/check-k8s reads the manifests with it)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-yaml >/dev/null 2>&1 ||
            skip "python3 with PyYAML is missing and apt-get install python3-yaml failed"
    else
        skip "python3 with PyYAML is missing (apt-get install python3-yaml, as root)"
    fi
fi
CHECK="scripts/check-k8s --bin $ZPS_BIN"

# ---- 1. static checks, and that they catch what they claim to
$CHECK >"$TMP/static.log" 2>&1 || { cat "$TMP/static.log"; fail "scripts/check-k8s failed on docs/deploy"; }
grep -E '^  (ok|note):' "$TMP/static.log"
echo "ok: scripts/check-k8s passes on docs/deploy"

# mutate NAME SED-EXPR FILE EXPECTED: a copy of docs/deploy with one edit
# must be refused with a message holding EXPECTED
mutate() {
    rm -rf "$TMP/mut"
    mkdir -p "$TMP/mut"
    cp -r docs/deploy "$TMP/mut/"
    sed -i "$2" "$TMP/mut/deploy/k8s/$3"
    cmp -s "docs/deploy/k8s/$3" "$TMP/mut/deploy/k8s/$3" && fail "mutation '$1' changed nothing in $3"
    if ZPS_K8S_DIR="$TMP/mut/deploy/k8s" $CHECK >"$TMP/mut.log" 2>&1; then
        fail "check-k8s accepted the mutation '$1'"
    fi
    grep -F -q -- "$4" "$TMP/mut.log" || { cat "$TMP/mut.log"; fail "mutation '$1': no message with '$4'"; }
    echo "ok: refused: $1 ($(grep -F -m1 -- "$4" "$TMP/mut.log" | sed 's/^ *FAIL: //' | cut -c1-110))"
}
mutate "a misspelt option in the ConfigMap" 's/ZPS_EPOCHS:/ZPS_EPOHCS:/' options.yaml \
    'ConfigMap key ZPS_EPOHCS: --epohcs is not an option'
mutate "a server-only option in the ConfigMap" 's/^  ZPS_EPOCHS:.*/&\n  ZPS_RESTORE: "1"/' options.yaml \
    'ConfigMap key ZPS_RESTORE: --restore is not an option of zps-worker'
mutate "3 replicas, 2 servers named" 's/replicas: 2/replicas: 3/' server.yaml \
    'ZPS_SERVERS ['
mutate "serviceName of no Service" 's/serviceName: zps-servers/serviceName: zps-server/' server.yaml \
    'serviceName zps-server is not a Service here'
mutate "the token read from the Secret volume" \
    's#ZPS_ADMIN_TOKEN_FILE, value: "/run/zps/admin-token"#ZPS_ADMIN_TOKEN_FILE, value: "/etc/zps/server/admin-token"#' \
    server.yaml 'zps-server refuses it'
mutate "a worker key path without the rank" 's#worker-$(ZPS_RANK).key#worker-0.key#' worker.yaml \
    'worker ZPS_CURVE_SECRET must name the rank'
mutate "4 completions, 3 workers" 's/completions: 3/completions: 4/' worker.yaml \
    'Job completions 4, parallelism 3 and ZPS_NUM_WORKERS 3 must be equal'

# ---- 2. the Kubernetes API types
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    $CHECK --schema >"$TMP/schema.log" 2>&1
    rc=$?
    if [ $rc -eq 77 ]; then
        echo "SKIP (part 2): $(grep check-k8s: "$TMP/schema.log" | head -1)"
    elif [ $rc -ne 0 ]; then
        cat "$TMP/schema.log"
        fail "the manifests do not validate against the Kubernetes API types"
    else
        sed -n '/^schema checks/,$p' "$TMP/schema.log" | grep -E '^  ok:'
        rm -rf "$TMP/mut" && mkdir -p "$TMP/mut" && cp -r docs/deploy "$TMP/mut/"
        sed -i 's/        envFrom:/        envFrm:/' "$TMP/mut/deploy/k8s/server.yaml"
        ZPS_K8S_DIR="$TMP/mut/deploy/k8s" $CHECK --schema >"$TMP/mut.log" 2>&1 &&
            fail "--schema accepted a misspelt field (envFrm)"
        grep -q "StatefulSet zps-server: .*'\"envFrm\"' does not exist in type 'Container'" "$TMP/mut.log" ||
            { cat "$TMP/mut.log"; fail "--schema: no message naming envFrm"; }
        echo "ok: refused: a misspelt field (envFrm in the StatefulSet's container)"
    fi
else
    echo "SKIP (part 2): no node/npm here for the Kubernetes API types (apt-get install nodejs npm)"
fi

# ---- 3. server names through DNS, in a network namespace
if [ "$(id -u)" != 0 ]; then
    echo "SKIP (part 3): the name-resolution run needs root (network namespace)"
elif ! ip netns add "zpsk8s$$" 2>"$TMP/netns.err"; then
    echo "SKIP (part 3): 'ip netns' is not usable here: $(cat "$TMP/netns.err")"
else
    NS=zpsk8s$$
    HOSTS=/etc/netns/$NS/hosts
    trap 'cleanup; ip netns del $NS 2>/dev/null; rm -rf /etc/netns/$NS' EXIT INT TERM
    ip -n "$NS" link set lo up
    mkdir -p "/etc/netns/$NS"
    # rewritten in place, never replaced: `ip netns exec` bind-mounts this file
    printf '127.0.0.1 localhost\n' >"$HOSTS"
    NAME=zps-server-0.zps-servers
    "$ZPS_BIN/zps-datagen" ctr --rows 20000 --test-rows 2000 --features 2000 --seed 7 \
        --out "$TMP/ctr" >"$TMP/datagen.log" 2>&1 || fail "zps-datagen failed"
    # (ip netns exec execs the program: $! is the daemon's own pid)
    ip netns exec "$NS" getent hosts "$NAME" >/dev/null && fail "$NAME resolves before we made it"

    # a: the worker starts first, with a name that does not resolve
    ip netns exec "$NS" "$ZPS_BIN/zps-worker" --servers "tcp://$NAME:7000" --rank 0 --num-workers 1 \
        --connect-timeout 60 --train "$TMP/ctr.train" --epochs 2 >"$TMP/worker-a.log" 2>&1 &
    WA=$!
    PIDS="$PIDS $WA"
    sleep 2
    kill -0 $WA 2>/dev/null || fail "the worker gave up on a name that does not resolve yet"
    printf '127.0.0.1 localhost\n127.0.0.2 %s\n' "$NAME" >"$HOSTS"
    ip netns exec "$NS" "$ZPS_BIN/zps-server" --bind tcp://127.0.0.2:7000 --rank 0 --num-servers 1 --num-workers 1 \
        --train "$TMP/ctr.train" >"$TMP/server-a.out" 2>"$TMP/server-a.log" &
    SA=$!
    PIDS="$PIDS $SA"
    wait_exit $WA 60; st=$?
    [ "$st" = 0 ] || fail "worker a exited $st"
    grep -q "hello from worker/0 at 127.0.0.1" "$TMP/server-a.log" || fail "server a saw no HELLO"
    kill -TERM $SA
    wait $SA 2>/dev/null
    echo "ok: a worker started before its server's name resolved trained once it did (2 s later)"

    # b: the server dies and comes back under the name at another address
    printf '127.0.0.1 localhost\n127.0.0.2 %s\n' "$NAME" >"$HOSTS"
    ip netns exec "$NS" "$ZPS_BIN/zps-server" --bind tcp://127.0.0.2:7000 --rank 0 --num-servers 1 --num-workers 1 \
        --checkpoint-dir "$TMP/ckpt" --checkpoint-every 0.2 --train "$TMP/ctr.train" \
        >"$TMP/server-b1.out" 2>"$TMP/server-b1.log" &
    SB1=$!
    PIDS="$PIDS $SB1"
    ip netns exec "$NS" "$ZPS_BIN/zps-worker" --servers "tcp://$NAME:7000" --rank 0 --num-workers 1 \
        --connect-timeout 60 --train "$TMP/ctr.train" --epochs 6 --checkpoint-dir "$TMP/ckpt" \
        --slow-worker 0 --slow-factor 20 >"$TMP/worker-b.log" 2>&1 &
    WB=$!
    PIDS="$PIDS $WB"
    t=0
    until grep -q "epoch 1/6 done" "$TMP/worker-b.log"; do
        t=$((t + 1))
        [ $t -gt 600 ] && fail "worker b did not finish epoch 1 in 60 s"
        kill -0 $WB 2>/dev/null || fail "worker b exited early"
        sleep 0.1
    done
    kill -KILL $SB1
    wait $SB1 2>/dev/null
    printf '127.0.0.1 localhost\n127.0.0.3 %s\n' "$NAME" >"$HOSTS"
    ip netns exec "$NS" "$ZPS_BIN/zps-server" --bind tcp://127.0.0.3:7000 --rank 0 --num-servers 1 --num-workers 1 \
        --checkpoint-dir "$TMP/ckpt" --checkpoint-every 0.2 --restore --train "$TMP/ctr.train" \
        >"$TMP/server-b2.out" 2>"$TMP/server-b2.log" &
    SB2=$!
    PIDS="$PIDS $SB2"
    wait_exit $WB 120; st=$?
    [ "$st" = 0 ] || fail "worker b exited $st after its server moved"
    grep -q "restored checkpoint" "$TMP/server-b2.log" || fail "the new server did not restore"
    grep -q "server 0 at tcp://$NAME:7000 restarted (a new process)" "$TMP/worker-b.log" ||
        fail "the worker did not notice the restarted server"
    grep -q "epoch 6/6 done" "$TMP/worker-b.log" || fail "worker b did not train its 6 passes"
    kill -TERM $SB2
    wait $SB2 2>/dev/null
    n=$(sed -n 's/.*stopping: .* \([0-9][0-9]*\) pushes received.*/\1/p' "$TMP/server-b2.log")
    [ "${n:-0}" -gt 0 ] || fail "the moved server received no push from the worker"
    echo "ok: the server came back at 127.0.0.3 under the same name; the worker re-resolved it and finished"
fi

# ---- 4. the image and the pods as containers (opt-in)
if [ "${ZPS_IT_K8S_CONTAINER:-0}" = 1 ]; then
    $CHECK --container >"$TMP/container.log" 2>&1
    rc=$?
    sed -n '/^container run/,$p' "$TMP/container.log"
    [ $rc -eq 77 ] || [ $rc -eq 0 ] || fail "scripts/check-k8s --container failed"
else
    echo "not run (part 4): building the image and running the pods as containers takes minutes;" \
        "ZPS_IT_K8S_CONTAINER=1 runs it (scripts/check-k8s --container)"
fi
echo "it_k8s: passed"
