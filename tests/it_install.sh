#!/bin/bash
# make install / make uninstall: `make install DESTDIR=$tmp
# PREFIX=/usr` puts the daemons and tools (not the test tools), zps-launch,
# libzps.so.0 (soname, only the API's symbols exported), zps.h, zps.pc, a man
# page per program and the documents under $tmp/usr; a C program written
# here, compiled with `pkg-config --cflags --libs zps` against the installed
# tree with -std=c11 -pedantic -Werror, connects to two zps-servers started
# here (a raw table, dim 2, sgd lr 1: a weight is minus the sum of its
# gradients), pushes and pulls through the installed library and checks the
# exact values, the servers' counters, the error codes and texts; then
# `make uninstall` with the same DESTDIR/PREFIX leaves no file.
# Runs make (it builds build/pic/ and build/man/ if needed): not run under
# ASan (ASAN_IT_SKIP).  Needs help2man (installed here when root, else
# skipped) and pkg-config.
. "$(dirname "$0")/lib.sh"
D=$TMP
ROOT=$(cd "$(dirname "$0")/.." && pwd)
skip() { echo "SKIP: $*"; exit 77; }

if ! command -v help2man >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || skip "help2man is not installed and we are not root (scripts/install-deps installs it)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends help2man >"$D/apt.log" 2>&1 ||
        skip "help2man is not installed and apt-get install help2man failed: $(tail -2 "$D/apt.log")"
fi
command -v pkg-config >/dev/null 2>&1 || skip "pkg-config is not installed (scripts/install-deps installs it)"

DEST=$D/dest
# a make of its own, not a part of the make that runs the tests (make test)
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
make -C "$ROOT" --no-print-directory install DESTDIR="$DEST" PREFIX=/usr >"$D/install.log" 2>&1 ||
    fail "make install failed: $(tail -5 "$D/install.log")"

# ---- the tree -------------------------------------------------------------------------
U=$DEST/usr
for p in zps-server zps-worker zps-coord zps-predict zps-ctl zps-datagen zps-keygen zps-bench zps-launch; do
    [ -x "$U/bin/$p" ] || fail "$U/bin/$p is not installed (or not executable)"
    grep -q '^\.TH' "$U/share/man/man1/$p.1" 2>/dev/null || fail "no man page $U/share/man/man1/$p.1"
done
for p in zps-proxy zps-hostile it_kv zps-check; do
    [ ! -e "$U/bin/$p" ] || fail "the test tool $p was installed"
done
"$U/bin/zps-predict" --version | grep -q "^zps-predict " || fail "installed zps-predict --version"
grep -q 'export' "$U/share/man/man1/zps-predict.1" || fail "zps-predict.1 does not carry --help's options"
[ -f "$U/lib/libzps.so.0.1.0" ] && [ -L "$U/lib/libzps.so.0" ] && [ -L "$U/lib/libzps.so" ] ||
    fail "libzps.so.0.1.0 and its links libzps.so.0, libzps.so are not all there: $(ls -l "$U/lib")"
readelf -d "$U/lib/libzps.so.0.1.0" | grep -q 'SONAME.*\[libzps\.so\.0\]' || fail "soname is not libzps.so.0"
exported=$(nm -D --defined-only "$U/lib/libzps.so.0.1.0" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort | tr '\n' ' ')
case $exported in *wk_*|*zps_table*|*zps_shard*) fail "libzps exports internal symbols: $exported" ;; esac
case $exported in *zps_client_push*) ;; *) fail "libzps does not export zps_client_push: $exported" ;; esac
[ -f "$U/include/zps.h" ] || fail "no $U/include/zps.h"
grep -q '#include "' "$U/include/zps.h" && fail "zps.h includes a project header"
[ -f "$U/lib/pkgconfig/zps.pc" ] || fail "no $U/lib/pkgconfig/zps.pc"
[ -f "$U/share/doc/zps/operations.md" ] || fail "docs not installed"
export PKG_CONFIG_PATH=$U/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$DEST
v=$(pkg-config --modversion zps) || fail "pkg-config does not find zps.pc"
[ "zps-predict $v" = "$("$U/bin/zps-predict" --version)" ] ||
    fail "zps.pc says version $v, zps-predict says $("$U/bin/zps-predict" --version)"
FLAGS=$(pkg-config --cflags --libs zps) || fail "pkg-config --cflags --libs zps failed"
echo "pkg-config --cflags --libs zps: $FLAGS"
case $FLAGS in *"-L$U/lib"*"-lzps"*) ;; *) fail "pkg-config --libs zps gave '$FLAGS'" ;; esac
echo "ok: make install DESTDIR PREFIX=/usr: binaries, zps-launch, man pages, libzps.so.0 (API symbols only), zps.h, zps.pc, docs"

# ---- a client program through the installed library ------------------------------------
cat >"$D/client.c" <<'C'
#include <zps.h>

#include <stdio.h>
#include <string.h>

#define CHECK(c, ...) do { if (!(c)) { printf("FAIL line %d: ", __LINE__); printf(__VA_ARGS__); \
                                       printf("\n"); return 1; } } while (0)

int main(int argc, char **argv)
{
    char err[512];
    CHECK(argc == 3, "usage: client SERVERS DEAD-SERVER");
    CHECK(strcmp(zps_strerror(ZPS_ETIMEDOUT), "timed out") == 0, "strerror: %s",
          zps_strerror(ZPS_ETIMEDOUT));
    zps_client_options_t o;
    zps_client_options_init(&o);
    o.rank = 7;
    zps_client_t *c = zps_client_connect(argv[1], &o, err, sizeof err);
    CHECK(c, "connect: %s", err);
    CHECK(zps_client_num_servers(c) == 2, "num_servers %u", zps_client_num_servers(c));
    CHECK(zps_client_dim(c) == 2, "dim %u", zps_client_dim(c));
    /* keys on both servers, one near 2^64 */
    uint64_t keys[5] = {0, 3, 1000003, 1ULL << 40, UINT64_MAX - 2};
    float g1[10], g2[10], w[10];
    for (int i = 0; i < 10; i++) {
        g1[i] = (float)(i + 1);          /* 1..10 */
        g2[i] = (float)(-3 * i) + 0.5f;  /* 0.5, -2.5, ... */
    }
    int rc = zps_client_push(c, keys, g1, 5);
    CHECK(rc == 0, "push 1: %d %s", rc, zps_client_error(c));
    rc = zps_client_push(c, keys + 1, g2 + 2, 4); /* keys 1..4 only */
    CHECK(rc == 0, "push 2: %d %s", rc, zps_client_error(c));
    rc = zps_client_pull(c, keys, 5, w);
    CHECK(rc == 0, "pull: %d %s", rc, zps_client_error(c));
    for (int i = 0; i < 10; i++) {
        float want = -g1[i] - (i >= 2 ? g2[i] : 0.0f);
        CHECK(w[i] == want, "key %d col %d: pulled %.9g, want %.9g", i / 2, i % 2, (double)w[i],
              (double)want);
    }
    /* a key never pushed is 0 */
    uint64_t fresh[2] = {5, 6};
    rc = zps_client_pull(c, fresh, 2, w);
    CHECK(rc == 0 && w[0] == 0 && w[1] == 0 && w[2] == 0 && w[3] == 0, "fresh pull %d", rc);
    /* the servers' counters: 5 keys stored in all, 2 pushes acknowledged */
    uint64_t stored = 0, pushed_keys = 0;
    for (uint32_t s = 0; s < 2; s++) {
        zps_server_stats_t st;
        rc = zps_client_stats(c, s, &st);
        CHECK(rc == 0, "stats %u: %s", s, zps_client_error(c));
        stored += st.keys_stored;
        pushed_keys += st.keys_pushed;
    }
    CHECK(stored == 5, "keys_stored %llu, want 5", (unsigned long long)stored);
    CHECK(pushed_keys == 9, "keys_pushed %llu, want 9", (unsigned long long)pushed_keys);
    /* bad input: unsorted keys, the reserved key, a server out of range */
    uint64_t bad[2] = {9, 4};
    rc = zps_client_push(c, bad, g1, 2);
    CHECK(rc == ZPS_EINVAL && strstr(zps_client_error(c), "strictly increasing"),
          "unsorted push: %d '%s'", rc, zps_client_error(c));
    uint64_t bias[1] = {UINT64_MAX};
    rc = zps_client_pull(c, bias, 1, w);
    CHECK(rc == ZPS_EINVAL && strstr(zps_client_error(c), "reserved"), "bias pull: %d", rc);
    zps_server_stats_t st;
    CHECK(zps_client_stats(c, 2, &st) == ZPS_EINVAL, "stats of server 2");
    zps_client_destroy(&c);
    CHECK(c == NULL, "destroy did not clear the handle");
    zps_client_destroy(&c); /* NULL is fine */
    /* no server there: NULL and a reason naming the address */
    o.connect_timeout_ms = 500;
    c = zps_client_connect(argv[2], &o, err, sizeof err);
    CHECK(!c && strstr(err, argv[2]), "dead server: '%s'", err);
    CHECK(!zps_client_connect("nonsense", NULL, err, sizeof err) && strstr(err, "nonsense"),
          "bad list: '%s'", err);
    printf("client: ok (zps %s)\n", zps_version());
    return 0;
}
C
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -pedantic -Werror -o "$D/client" "$D/client.c" $FLAGS \
    >"$D/cc.log" 2>&1 || fail "compiling against the installed zps failed: $(head -20 "$D/cc.log")"
start_servers 2 --table-dim 2 --optimizer sgd --lr 1
# a port nothing listens on: bind one, note it, free it
DEAD=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null) ||
    DEAD=1
LD_LIBRARY_PATH=$U/lib "$D/client" "$SERVERS" "tcp://127.0.0.1:$DEAD" >"$D/client.out" 2>&1 ||
    fail "the client program failed: $(cat "$D/client.out")"
grep -q "^client: ok" "$D/client.out" || fail "client: $(cat "$D/client.out")"
# it ran against the installed library, not another one
LD_LIBRARY_PATH=$U/lib ldd "$D/client" | grep -q "libzps.so.0 => $U/lib/libzps.so.0" ||
    fail "the client did not load $U/lib/libzps.so.0: $(LD_LIBRARY_PATH=$U/lib ldd "$D/client")"
echo "ok: a C program built with pkg-config --cflags --libs zps pushed and pulled exact values through the installed libzps"

# ---- uninstall ------------------------------------------------------------------------------
make -C "$ROOT" --no-print-directory uninstall DESTDIR="$DEST" PREFIX=/usr >"$D/uninstall.log" 2>&1 ||
    fail "make uninstall failed: $(tail -5 "$D/uninstall.log")"
left=$(find "$DEST" \( -type f -o -type l \) | head)
[ -z "$left" ] || fail "make uninstall left files: $left"
echo "ok: make uninstall removed every installed file"
