/* fuzz_msg: the receive path of the wire protocol (common/zps_msg.c) and the
 * frame decoders behind it, as a server meets them.
 *
 * Each input becomes one multipart message that a DEALER sends to a ROUTER
 * over inproc (one ZeroMQ context for the process); the ROUTER side receives
 * it with zps_msg_recv(router = 1), the server's own validation.  Input:
 *
 *   byte 0   flags: bit 0 structured envelope (else frame 0 is raw bytes),
 *            bit 1 keys frame encoded from the input (else raw bytes),
 *            bit 2 echo with zps_msg_send_frames (else zps_msg_send)
 *   raw:        frames as [u16 length][bytes], up to 6 (more than 3 must be
 *               rejected)
 *   structured: an envelope built field by field from the input (version,
 *               type, any body case, its fields) and packed with protobuf-c,
 *               then keys and values frames
 *
 * Checks: the result is 0, ZPS_EPROTO or ZPS_EVERSION; the identity is kept
 * whatever happened; accepted messages have version 1, a body matching the
 * type and at most 2 bulk frames; wire_bytes adds up.  For an accepted pull,
 * push or pull reply the frames are decoded as the server does (keys with the
 * envelope's nkeys when the length allows, values with the codec and nkeys x
 * dim through zps_msg_floats / zps_vc_decode).  Every accepted message is
 * sent back (ROUTER -> DEALER, the reply path) and received again with
 * zps_msg_recv(router = 0): the envelope must repack to the same bytes and
 * the bulk frames must arrive unchanged. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "fuzz_util.h"
#include "zps.pb-c.h"
#include "zps_codec.h"
#include "zps_err.h"
#include "zps_msg.h"
#include "zps_vcodec.h"

#define MAX_FRAMES 6
#define MAX_VALUES (1u << 22)

static void *g_ctx, *g_router, *g_dealer;

static void setup(void)
{
    if (g_ctx)
        return;
    g_ctx = zmq_ctx_new();
    g_router = zmq_socket(g_ctx, ZMQ_ROUTER);
    g_dealer = zmq_socket(g_ctx, ZMQ_DEALER);
    FUZZ_CHECK(g_router && g_dealer, "sockets");
    int linger = 0;
    zmq_setsockopt(g_router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(g_dealer, ZMQ_LINGER, &linger, sizeof linger);
    FUZZ_CHECK(zmq_bind(g_router, "inproc://zps-fuzz-msg") == 0, "bind");
    FUZZ_CHECK(zmq_connect(g_dealer, "inproc://zps-fuzz-msg") == 0, "connect");
}

typedef struct {
    const uint8_t *p[MAX_FRAMES];
    size_t len[MAX_FRAMES];
    int n;
} frames_t;

/* A NUL-terminated string of up to 24 input bytes (kept until the next input). */
static char *take_str(fuzz_in_t *in, char *buf)
{
    size_t got, want = fuzz_u8(in) % 25;
    const uint8_t *p = fuzz_bytes(in, want, &got);
    memcpy(buf, p, got);
    buf[got] = '\0';
    return buf;
}

/* A count: mostly small, sometimes anything. */
static uint64_t take_count(fuzz_in_t *in)
{
    uint8_t k = fuzz_u8(in);
    if (k < 0xf0)
        return k;
    if (k < 0xf8)
        return fuzz_u16(in);
    return fuzz_u64(in);
}

static uint8_t g_env_buf[4096], g_keys_buf[10 * 4096];
static char g_s1[32], g_s2[32];

/* Structured mode: builds frames from fields; returns the frame count. */
static int build_structured(fuzz_in_t *in, uint8_t flags, frames_t *f)
{
    static const int cases[] = {
        ZPS__ENVELOPE__BODY__NOT_SET, ZPS__ENVELOPE__BODY_HELLO, ZPS__ENVELOPE__BODY_HELLO_REPLY,
        ZPS__ENVELOPE__BODY_PULL, ZPS__ENVELOPE__BODY_PULL_REPLY, ZPS__ENVELOPE__BODY_PUSH,
        ZPS__ENVELOPE__BODY_PUSH_ACK, ZPS__ENVELOPE__BODY_ERROR, ZPS__ENVELOPE__BODY_STATS,
        ZPS__ENVELOPE__BODY_STATS_REPLY, ZPS__ENVELOPE__BODY_SHUTDOWN, ZPS__ENVELOPE__BODY_CLOCK,
        ZPS__ENVELOPE__BODY_HEARTBEAT,
    };
    Zps__Envelope env = ZPS__ENVELOPE__INIT;
    Zps__Hello hello = ZPS__HELLO__INIT;
    Zps__HelloReply hello_reply = ZPS__HELLO_REPLY__INIT;
    Zps__Pull pull = ZPS__PULL__INIT;
    Zps__PullReply pull_reply = ZPS__PULL_REPLY__INIT;
    Zps__Push push = ZPS__PUSH__INIT;
    Zps__PushAck push_ack = ZPS__PUSH_ACK__INIT;
    Zps__Error error = ZPS__ERROR__INIT;
    Zps__Stats stats = ZPS__STATS__INIT;
    Zps__StatsReply stats_reply = ZPS__STATS_REPLY__INIT;
    Zps__Shutdown shutdown = ZPS__SHUTDOWN__INIT;
    Zps__Clock clock = ZPS__CLOCK__INIT;
    Zps__Heartbeat heartbeat = ZPS__HEARTBEAT__INIT;

    uint8_t vb = fuzz_u8(in);
    env.version = vb < 0xf0 ? 1 : vb == 0xff ? fuzz_u32(in) : vb & 3;
    env.role = (Zps__Role)(fuzz_u8(in) & 3);
    env.rank = fuzz_u8(in);
    env.request_id = take_count(in);
    uint8_t tb = fuzz_u8(in);
    env.type = (Zps__MsgType)(tb & 15);
    uint8_t cb = fuzz_u8(in);
    /* mostly the body that matches the type */
    int bc = cb < 0xe0 ? -1 : cases[cb % (sizeof cases / sizeof cases[0])];
    if (bc < 0) {
        static const int by_type[16] = {0, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 0, 20, 0, 21, 0};
        bc = by_type[env.type];
    }
    env.body_case = (Zps__Envelope__BodyCase)bc;
    uint64_t nkeys = 0, dim = 1;
    uint32_t codec = 0;
    switch (bc) {
    case ZPS__ENVELOPE__BODY_HELLO:
        hello.client_version = take_str(in, g_s1);
        env.hello = &hello;
        break;
    case ZPS__ENVELOPE__BODY_HELLO_REPLY:
        hello_reply.server_rank = fuzz_u8(in);
        hello_reply.num_servers = fuzz_u8(in);
        hello_reply.server_version = take_str(in, g_s1);
        hello_reply.job = take_str(in, g_s2);
        env.hello_reply = &hello_reply;
        break;
    case ZPS__ENVELOPE__BODY_PULL:
        pull.table = fuzz_u8(in) & 7;
        pull.nkeys = nkeys = take_count(in);
        pull.clock = fuzz_u8(in);
        pull.key_sig = fuzz_u8(in) < 0x80 ? 0 : fuzz_u64(in);
        pull.value_codec = fuzz_u8(in) % 5;
        env.pull = &pull;
        break;
    case ZPS__ENVELOPE__BODY_PULL_REPLY:
        pull_reply.table = fuzz_u8(in) & 7;
        pull_reply.nkeys = nkeys = take_count(in);
        pull_reply.dim = (uint32_t)(dim = fuzz_u8(in) % 9);
        pull_reply.value_codec = codec = fuzz_u8(in) % 5;
        env.pull_reply = &pull_reply;
        break;
    case ZPS__ENVELOPE__BODY_PUSH:
        push.table = fuzz_u8(in) & 7;
        push.nkeys = nkeys = take_count(in);
        push.dim = (uint32_t)(dim = fuzz_u8(in) % 9);
        push.seq = fuzz_u8(in);
        push.clock = fuzz_u8(in);
        push.tick = fuzz_u8(in) & 1;
        push.examples = fuzz_u8(in);
        push.mean = fuzz_u8(in) & 1;
        push.value_codec = codec = fuzz_u8(in) % 5;
        push.key_sig = fuzz_u8(in) < 0x80 ? 0 : fuzz_u64(in);
        push.raw_bytes = fuzz_u16(in);
        env.push = &push;
        break;
    case ZPS__ENVELOPE__BODY_PUSH_ACK:
        push_ack.nkeys = take_count(in);
        env.push_ack = &push_ack;
        break;
    case ZPS__ENVELOPE__BODY_ERROR:
        error.code = -(int32_t)(30900 + fuzz_u8(in) % 16);
        error.text = take_str(in, g_s1);
        env.error = &error;
        break;
    case ZPS__ENVELOPE__BODY_STATS: env.stats = &stats; break;
    case ZPS__ENVELOPE__BODY_STATS_REPLY:
        stats_reply.pushes = take_count(in);
        env.stats_reply = &stats_reply;
        break;
    case ZPS__ENVELOPE__BODY_SHUTDOWN:
        shutdown.reason = take_str(in, g_s1);
        env.shutdown = &shutdown;
        break;
    case ZPS__ENVELOPE__BODY_CLOCK:
        clock.clock = take_count(in);
        clock.done = fuzz_u8(in) & 1;
        env.clock = &clock;
        break;
    case ZPS__ENVELOPE__BODY_HEARTBEAT:
        heartbeat.clock = take_count(in);
        env.heartbeat = &heartbeat;
        break;
    default: break;
    }
    size_t elen = zps__envelope__get_packed_size(&env);
    FUZZ_CHECK(elen <= sizeof g_env_buf, "envelope of %zu bytes", elen);
    zps__envelope__pack(&env, g_env_buf);
    f->p[0] = g_env_buf;
    f->len[0] = elen;
    f->n = 1;

    uint8_t shape = fuzz_u8(in);
    if (shape & 1) { /* keys frame */
        size_t klen = 0;
        if ((flags & 2) && nkeys <= 4096) {
            uint64_t keys[4096], k = fuzz_u16(in);
            for (size_t i = 0; i < nkeys; i++) {
                keys[i] = k;
                uint8_t g = fuzz_u8(in);
                k += g == 0xff ? fuzz_u64(in) | 1 : (uint64_t)g + 1;
                if (k <= keys[i])
                    k = keys[i] + 1; /* wrapped: the last keys may repeat */
            }
            long w = zps_keys_encode(keys, (size_t)nkeys, g_keys_buf, sizeof g_keys_buf);
            klen = w > 0 ? (size_t)w : 0;
            f->p[1] = g_keys_buf;
        } else {
            f->p[1] = fuzz_bytes(in, fuzz_u16(in), &klen);
        }
        f->len[1] = klen;
        f->n = 2;
        if (shape & 2) { /* values frame: the right size for nkeys x dim, or not */
            size_t want = 0, got;
            if ((shape & 4) && nkeys * dim <= MAX_VALUES)
                want = codec <= 2 ? zps_vc_size((zps_vcodec_t)codec, nkeys * dim) : nkeys * dim;
            else
                want = fuzz_u16(in);
            f->p[2] = fuzz_bytes(in, want, &got);
            f->len[2] = got;
            f->n = 3;
            if (shape & 8) { /* one frame too many */
                f->p[3] = fuzz_bytes(in, fuzz_u8(in), &f->len[3]);
                f->n = 4;
            }
        }
    }
    return f->n;
}

static int build_raw(fuzz_in_t *in, frames_t *f)
{
    f->n = 0;
    while (f->n < MAX_FRAMES && (f->n == 0 || in->n > 0)) {
        uint16_t l = fuzz_u16(in);
        f->p[f->n] = fuzz_bytes(in, l, &f->len[f->n]);
        f->n++;
    }
    return f->n;
}

static void send_frames(const frames_t *f)
{
    for (int i = 0; i < f->n; i++) {
        int rc;
        while ((rc = zmq_send(g_dealer, f->len[i] ? (const void *)f->p[i] : "", f->len[i],
                              i + 1 < f->n ? ZMQ_SNDMORE : 0)) < 0 && errno == EINTR)
            ;
        FUZZ_CHECK(rc == (int)f->len[i], "zmq_send frame %d failed", i);
    }
}

/* Decodes the bulk frames of an accepted message the way the server and the
 * client do; returns nothing, checks the decoders' own contracts. */
static void decode_bulk(zps_msg_t *m)
{
    uint64_t nkeys = 0, dim = 0;
    uint32_t codec = 0;
    if (m->env->body_case == ZPS__ENVELOPE__BODY_PULL) {
        nkeys = m->env->pull->nkeys;
    } else if (m->env->body_case == ZPS__ENVELOPE__BODY_PUSH) {
        nkeys = m->env->push->nkeys;
        dim = m->env->push->dim;
        codec = m->env->push->value_codec;
    } else if (m->env->body_case == ZPS__ENVELOPE__BODY_PULL_REPLY) {
        nkeys = m->env->pull_reply->nkeys;
        dim = m->env->pull_reply->dim;
        codec = m->env->pull_reply->value_codec;
    } else {
        return;
    }
    size_t klen;
    const uint8_t *kb = zps_msg_bulk(m, 0, &klen);
    /* the server's pre-check bounds the allocation by the frame length */
    if (nkeys > 0 && klen >= nkeys && klen <= zps_keys_bound(nkeys)) {
        uint64_t *keys = malloc(nkeys * sizeof *keys);
        FUZZ_CHECK(keys, "out of memory");
        size_t at = 0;
        if (zps_keys_decode(kb, klen, nkeys, keys, &at) == 0)
            FUZZ_CHECK(zps_keys_check_sorted(keys, nkeys) == 0, "decoded keys not sorted");
        else
            FUZZ_CHECK(at <= klen, "error offset %zu past %zu", at, klen);
        free(keys);
    }
    if (m->env->body_case == ZPS__ENVELOPE__BODY_PULL)
        return;
    size_t vlen;
    zps_msg_bulk(m, 1, &vlen);
    if (dim == 0 || nkeys > MAX_VALUES / dim)
        return; /* the server refuses these before looking at the values */
    size_t nv = (size_t)(nkeys * dim);
    if (codec == 0) {
        float *scratch = NULL;
        size_t cap = 0;
        const float *v = zps_msg_floats(m, 1, nv, &scratch, &cap);
        FUZZ_CHECK((v != NULL) == (vlen == nv * 4), "zps_msg_floats: %zu bytes for %zu floats: %s",
                   vlen, nv, v ? "accepted" : "rejected");
        if (v && nv) {
            FUZZ_CHECK(((uintptr_t)v & 3) == 0, "unaligned floats");
            volatile float sum = 0;
            for (size_t i = 0; i < nv; i++)
                sum += v[i]; /* ASan: every float readable */
            (void)sum;
        }
        free(scratch);
    } else if (vlen <= 4 * (size_t)MAX_VALUES) {
        float *out = malloc((nv ? nv : 1) * sizeof *out);
        FUZZ_CHECK(out, "out of memory");
        size_t vl;
        const uint8_t *vb = zps_msg_bulk(m, 1, &vl);
        int rc = zps_vc_decode((zps_vcodec_t)codec, vb, vl, nv, out);
        if (rc == 0)
            FUZZ_CHECK(codec <= 2 && vl == zps_vc_size((zps_vcodec_t)codec, nv),
                       "codec %u accepted %zu bytes for %zu values", codec, vl, nv);
        free(out);
    }
}

/* protobuf-c (1.4) accepts a field number 0 when its tag is written as a
 * non-minimal varint (0x85 0x00), keeps it as an unknown field, repacks it
 * minimally (0x05) and then rejects its own output.  Such envelopes cannot
 * round-trip whatever zps does; the echo skips them. */
static int pb_round_trips(const Zps__Envelope *e)
{
    size_t n = zps__envelope__get_packed_size(e);
    uint8_t *buf = malloc(n ? n : 1);
    FUZZ_CHECK(buf, "out of memory");
    zps__envelope__pack(e, buf);
    Zps__Envelope *x = zps__envelope__unpack(NULL, n, buf);
    free(buf);
    if (!x)
        return 0;
    zps__envelope__free_unpacked(x, NULL);
    return 1;
}

/* Sends the accepted message back over the reply path and compares. */
static void echo(zps_msg_t *m, uint8_t flags)
{
    if (!pb_round_trips(m->env))
        return;
    size_t klen = 0, vlen = 0;
    const void *kb = zps_msg_bulk(m, 0, &klen), *vb = zps_msg_bulk(m, 1, &vlen);
    size_t wire = 0;
    int rc;
    if (flags & 4) {
        /* only the client (DEALER) side uses send_frames: swap roles by
         * sending from the ROUTER with an identity frame first */
        zmq_msg_t id, k, v;
        zmq_msg_init(&id);
        zmq_msg_copy(&id, &m->ident);
        FUZZ_CHECK(zmq_msg_send(&id, g_router, ZMQ_SNDMORE) >= 0, "send identity");
        zmq_msg_init_size(&k, klen);
        if (klen)
            memcpy(zmq_msg_data(&k), kb, klen);
        zmq_msg_init_size(&v, vlen);
        if (vlen)
            memcpy(zmq_msg_data(&v), vb, vlen);
        rc = zps_msg_send_frames(g_router, m->env, m->nbulk >= 1 ? &k : NULL,
                                 m->nbulk >= 2 ? &v : NULL, &wire);
        if (m->nbulk < 1)
            zmq_msg_close(&k);
        if (m->nbulk < 2)
            zmq_msg_close(&v);
    } else {
        void *kc = m->nbulk >= 1 ? malloc(klen ? klen : 1) : NULL;
        void *vc = m->nbulk >= 2 ? malloc(vlen ? vlen : 1) : NULL;
        if (kc && klen)
            memcpy(kc, kb, klen);
        if (vc && vlen)
            memcpy(vc, vb, vlen);
        rc = zps_msg_send(g_router, &m->ident, m->env, kc, klen, vc, vlen, &wire);
    }
    FUZZ_CHECK(rc == 0, "echo send failed: %d", rc);
    size_t elen = zps__envelope__get_packed_size(m->env);
    FUZZ_CHECK(wire == elen + klen + vlen, "send wire bytes %zu, want %zu", wire,
               elen + klen + vlen);

    zps_msg_t r;
    while ((rc = zps_msg_recv(g_dealer, 0, &r, 0)) == ZPS_EINTR)
        zps_msg_close(&r);
    FUZZ_CHECK(rc == 0, "echo received with %d: %s", rc, r.reason);
    FUZZ_CHECK(!r.has_ident && r.nbulk == m->nbulk, "echo has %d bulk frames, sent %d", r.nbulk,
               m->nbulk);
    FUZZ_CHECK(r.wire_bytes == wire, "echo wire bytes %zu, sent %zu", r.wire_bytes, wire);
    size_t elen2 = zps__envelope__get_packed_size(r.env);
    FUZZ_CHECK(elen2 == elen, "echo envelope repacks to %zu bytes, not %zu", elen2, elen);
    uint8_t *a = malloc(elen + 1), *b = malloc(elen + 1);
    FUZZ_CHECK(a && b, "out of memory");
    zps__envelope__pack(m->env, a);
    zps__envelope__pack(r.env, b);
    FUZZ_CHECK(memcmp(a, b, elen) == 0, "echo envelope differs");
    free(a);
    free(b);
    for (int i = 0; i < r.nbulk; i++) {
        size_t l1, l2;
        const void *p1 = zps_msg_bulk(m, i, &l1), *p2 = zps_msg_bulk(&r, i, &l2);
        FUZZ_CHECK(l1 == l2 && (l1 == 0 || memcmp(p1, p2, l1) == 0), "echo bulk %d differs", i);
    }
    zps_msg_close(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    fuzz_in_t in = {data, size};
    uint8_t flags = fuzz_u8(&in);
    frames_t f;
    memset(&f, 0, sizeof f);
    if (flags & 1)
        build_structured(&in, flags, &f);
    else
        build_raw(&in, &f);
    send_frames(&f);

    /* blocking calls may see EINTR from libFuzzer's -timeout alarm: retried */
    zps_msg_t m;
    int rc;
    while ((rc = zps_msg_recv(g_router, 1, &m, 0)) == ZPS_EINTR)
        zps_msg_close(&m);
    FUZZ_CHECK(rc == 0 || rc == ZPS_EPROTO || rc == ZPS_EVERSION, "zps_msg_recv returned %d", rc);
    FUZZ_CHECK(m.has_ident && zmq_msg_size(&m.ident) > 0, "identity lost (rc %d)", rc);
    size_t total = 0;
    for (int i = 0; i < f.n; i++)
        total += f.len[i];
    FUZZ_CHECK(m.wire_bytes == total + zmq_msg_size(&m.ident), "wire_bytes %zu, frames %zu + %zu",
               m.wire_bytes, total, zmq_msg_size(&m.ident));
    FUZZ_CHECK(m.nbulk <= ZPS_MSG_MAX_BULK && m.nbulk == (f.n - 1 < 2 ? f.n - 1 : 2),
               "%d bulk frames kept of %d frames", m.nbulk, f.n);
    FUZZ_CHECK(strlen(m.reason) < sizeof m.reason, "reason not terminated");
    FUZZ_CHECK(zps_msg_type_name(m.env ? (int)m.env->type : -1) != NULL, "type name");
    if (f.n > 1 + ZPS_MSG_MAX_BULK)
        FUZZ_CHECK(rc == ZPS_EPROTO, "%d frames accepted", f.n);
    if (rc != 0) {
        FUZZ_CHECK(m.reason[0], "rejected (%d) without a reason", rc);
        if (rc == ZPS_EVERSION)
            FUZZ_CHECK(m.env && m.env->version != ZPS_PROTOCOL_VERSION, "EVERSION for version 1");
    } else {
        FUZZ_CHECK(m.env && m.env->version == ZPS_PROTOCOL_VERSION, "accepted version");
        FUZZ_CHECK(f.n <= 1 + ZPS_MSG_MAX_BULK, "too many frames accepted");
        decode_bulk(&m);
        echo(&m, flags);
    }
    zps_msg_close(&m);
    FUZZ_CHECK(m.env == NULL && m.nbulk == 0 && !m.has_ident, "zps_msg_close left state");
    return 0;
}
