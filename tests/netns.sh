# Test hosts on this machine (sourced after tests/lib.sh): network
# namespaces joined by veth pairs and a bridge, each with its own address
# and, on request, its own sshd.  Needs root and `ip netns`.
#
#   netns_check              exit 77 (skip) with the reason unless usable
#   netns_up NHOSTS          hosts 1..NHOSTS: namespace zps${N}hI, address
#                            $SUB.1I on its eth0, bridge $BR at $SUB.1; sets
#                            N, BR, SUB, NSS; netns_down runs at exit
#   netns_sshd               sshd in every host (keys made for this run); sets
#                            RSH ("ssh -F CONFIG"; hosts zpsh1.. are known to
#                            it), SSHD_PIDS
#   netns_procs_left [IGNORE-COMM...]: "comm(ns) ..." of the processes in the
#                            hosts other than their sshd daemons
#   netns_down               kill everything in the hosts, delete them
# The caller's own EXIT trap must call netns_down (netns_up sets
# `trap 'netns_down; cleanup' EXIT` when the caller has not set NETNS_TRAP=0).

netns_skip() { echo "SKIP: $*"; exit 77; }

netns_check() {
    PATH=$PATH:/usr/sbin:/sbin
    [ "$(id -u)" = 0 ] || netns_skip "needs root (network namespaces)"
    command -v ip >/dev/null 2>&1 || netns_skip "no 'ip' command (make deps installs iproute2)"
    _probe=zps-probe-$$
    if ! _err=$(ip netns add $_probe 2>&1); then netns_skip "'ip netns' is not usable here: $_err"; fi
    ip netns del $_probe
}

NSS="" NETNS_HOSTS=0 SSHD_PIDS="" NETNS_MADE_RUN_SSHD=0 BR="" N=""
netns_down() {
    for _ns in $NSS; do
        _p=$(ip netns pids "$_ns" 2>/dev/null)
        [ -n "$_p" ] && kill -TERM $_p 2>/dev/null
    done
    [ -n "$NSS" ] && sleep 0.3
    for _ns in $NSS; do
        _p=$(ip netns pids "$_ns" 2>/dev/null)
        [ -n "$_p" ] && kill -KILL $_p 2>/dev/null
        ip netns del "$_ns" 2>/dev/null
    done
    _h=1
    while [ "$_h" -le "$NETNS_HOSTS" ]; do ip link del "zps${N}v$_h" 2>/dev/null; _h=$((_h + 1)); done
    [ -n "$BR" ] && ip link del "$BR" 2>/dev/null
    [ "$NETNS_MADE_RUN_SSHD" = 1 ] && rmdir /run/sshd 2>/dev/null
    NSS="" BR=""
    return 0
}

netns_up() {
    NETNS_HOSTS=$1
    # N: a free number for this run's names and subnet (10.213.N.0/24),
    # claimed by creating the bridge
    _n=$(($$ % 200 + 20)) _tries=0
    while [ $_tries -lt 200 ]; do
        if ip link add "zps${_n}br" type bridge 2>/dev/null; then N=$_n; break; fi
        _tries=$((_tries + 1)); _n=$(((_n - 19) % 200 + 20))
    done
    [ -n "$N" ] || netns_skip "cannot create a bridge: $(ip link add zpsprobebr type bridge 2>&1)"
    BR=zps${N}br SUB=10.213.$N
    [ "${NETNS_TRAP:-1}" = 0 ] || trap 'netns_down; cleanup' EXIT
    ip addr add "$SUB.1/24" dev "$BR" && ip link set "$BR" up || fail "cannot set up bridge $BR"
    _h=1
    while [ "$_h" -le "$NETNS_HOSTS" ]; do
        _ns=zps${N}h$_h _v=zps${N}v$_h
        ip netns add "$_ns" || fail "cannot create namespace $_ns"
        NSS="$NSS $_ns"
        ip link add "$_v" type veth peer name "${_v}p" &&
            ip link set "${_v}p" netns "$_ns" &&
            ip -n "$_ns" link set "${_v}p" name eth0 &&
            ip -n "$_ns" addr add "$SUB.1$_h/24" dev eth0 &&
            ip -n "$_ns" link set eth0 up &&
            ip -n "$_ns" link set lo up &&
            ip link set "$_v" master "$BR" &&
            ip link set "$_v" up || fail "cannot set up the link of host $_h"
        _h=$((_h + 1))
    done
    echo "hosts: namespaces$NSS on $SUB.0/24 (bridge $BR)"
}

netns_sshd() {
    for _c in ssh ssh-keygen; do
        command -v $_c >/dev/null 2>&1 || netns_skip "no '$_c' command (make deps installs openssh-client)"
    done
    [ -x /usr/sbin/sshd ] || netns_skip "no /usr/sbin/sshd (make deps installs openssh-server)"
    K=$TMP/ssh
    mkdir -p "$K" && chmod 700 "$K"
    ssh-keygen -q -t ed25519 -N '' -C zps-test -f "$K/id" </dev/null >/dev/null &&
        ssh-keygen -q -t ed25519 -N '' -C zps-test-host -f "$K/hostkey" </dev/null >/dev/null ||
        fail "ssh-keygen failed"
    cp "$K/id.pub" "$K/authorized_keys"
    if [ ! -d /run/sshd ]; then mkdir -p /run/sshd && chmod 755 /run/sshd && NETNS_MADE_RUN_SSHD=1; fi
    _h=1
    while [ "$_h" -le "$NETNS_HOSTS" ]; do
        cat >"$K/sshd.$_h.conf" <<EOF
ListenAddress $SUB.1$_h
Port 22
HostKey $K/hostkey
PidFile $K/sshd.$_h.pid
AuthorizedKeysFile $K/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
UseDNS no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PrintMotd no
PrintLastLog no
MaxStartups 100
MaxSessions 100
LogLevel ERROR
EOF
        ip netns exec "zps${N}h$_h" /usr/sbin/sshd -D -e -f "$K/sshd.$_h.conf" >"$TMP/sshd.$_h.log" 2>&1 &
        SSHD_PIDS="$SSHD_PIDS $!"
        _h=$((_h + 1))
    done
    {
        _h=1
        while [ "$_h" -le "$NETNS_HOSTS" ]; do printf 'Host zpsh%s\n  HostName %s\n' $_h "$SUB.1$_h"; _h=$((_h + 1)); done
        cat <<EOF
Host *
  User root
  IdentityFile $K/id
  IdentitiesOnly yes
  UserKnownHostsFile /dev/null
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking no
  BatchMode yes
  LogLevel ERROR
  ConnectTimeout 5
  ServerAliveInterval 5
  ServerAliveCountMax 3
EOF
    } >"$K/config"
    RSH="ssh -F $K/config"
    _h=1
    while [ "$_h" -le "$NETNS_HOSTS" ]; do
        _t=0
        until $RSH zpsh$_h true </dev/null 2>"$TMP/ssh.err"; do
            _t=$((_t + 1))
            [ $_t -gt 50 ] && fail "ssh to test host $_h ($SUB.1$_h) does not work: $(cat "$TMP/ssh.err")"
            sleep 0.2
        done
        _h=$((_h + 1))
    done
    echo "ok: sshd runs in each host"
}

# netns_procs_left: the processes on the test hosts other than their sshd daemons
netns_procs_left() {
    for _ns in $NSS; do
        for _p in $(ip netns pids "$_ns" 2>/dev/null); do
            case " $SSHD_PIDS ${NETNS_KEEP_PIDS:-} " in *" $_p "*) continue ;; esac
            printf '%s(%s) ' "$(cat /proc/$_p/comm 2>/dev/null)" "$_ns"
        done
    done
}
