/* zps_msg: see zps_msg.h for the frame layout.
 *
 * The receive path never trusts the peer: every part is received (so the
 * socket is left at a message boundary) even when the message is rejected,
 * and at most 1 + ZPS_MSG_MAX_BULK parts are kept.  Envelopes are unpacked
 * with the default protobuf-c allocator, and only if they are at most
 * ZPS_MSG_MAX_ENVELOPE bytes; ZMQ_MAXMSGSIZE on the socket bounds what a
 * single frame can make ZeroMQ allocate. */
#include "zps_msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "zps_err.h"

static void s_free_frame(void *data, void *hint)
{
    (void)hint;
    free(data);
}

void zps_msg_env(Zps__Envelope *env, Zps__MsgType type, Zps__Role role, uint32_t rank,
                 uint64_t request_id)
{
    zps__envelope__init(env);
    env->version = ZPS_PROTOCOL_VERSION;
    env->type = type;
    env->role = role;
    env->rank = rank;
    env->request_id = request_id;
}

static int s_send_buf(void *sock, void *buf, size_t len, int more, zmq_free_fn *ffn, void *hint)
{
    zmq_msg_t msg;
    if (len == 0) {
        if (buf)
            ffn(buf, hint);
        zmq_msg_init(&msg);
    } else if (zmq_msg_init_data(&msg, buf, len, ffn, hint) != 0) {
        ffn(buf, hint);
        return ZPS_ENOMEM;
    }
    if (zmq_msg_send(&msg, sock, more ? ZMQ_SNDMORE : 0) < 0) {
        zmq_msg_close(&msg); /* releases buf through ffn */
        return errno == EINTR ? ZPS_EINTR : ZPS_EIO;
    }
    return 0;
}

int zps_msg_send(void *sock, zmq_msg_t *ident, const Zps__Envelope *env, void *keys,
                 size_t keys_len, void *vals, size_t vals_len, size_t *wire_bytes)
{
    return zps_msg_send_tracked(sock, ident, env, keys, keys_len, vals, vals_len, s_free_frame, NULL,
                                wire_bytes);
}

int zps_msg_send_tracked(void *sock, zmq_msg_t *ident, const Zps__Envelope *env, void *keys,
                         size_t keys_len, void *vals, size_t vals_len, zmq_free_fn *vfree,
                         void *vhint, size_t *wire_bytes)
{
    int rc = 0;
    uint8_t stackbuf[512];
    size_t elen = zps__envelope__get_packed_size(env);
    uint8_t *ebuf = elen <= sizeof stackbuf ? stackbuf : malloc(elen);
    int nbulk = vals ? 2 : keys ? 1 : 0;
    if (!ebuf) {
        free(keys);
        if (vals)
            vfree(vals, vhint);
        return ZPS_ENOMEM;
    }
    zps__envelope__pack(env, ebuf);
    if (ident) {
        zmq_msg_t id;
        zmq_msg_init(&id);
        zmq_msg_copy(&id, ident);
        if (zmq_msg_send(&id, sock, ZMQ_SNDMORE) < 0) {
            zmq_msg_close(&id);
            rc = ZPS_EIO;
            goto out;
        }
    }
    if (zmq_send(sock, ebuf, elen, nbulk ? ZMQ_SNDMORE : 0) < 0) {
        rc = errno == EINTR ? ZPS_EINTR : ZPS_EIO;
        goto out;
    }
    if (nbulk >= 1) {
        rc = s_send_buf(sock, keys, keys ? keys_len : 0, nbulk == 2, s_free_frame, NULL);
        keys = NULL;
        if (rc)
            goto out;
    }
    if (nbulk == 2) {
        rc = s_send_buf(sock, vals, vals_len, 0, vfree, vhint);
        vals = NULL;
    }
    if (wire_bytes)
        *wire_bytes += elen + keys_len + vals_len;
out:
    if (ebuf != stackbuf)
        free(ebuf);
    free(keys);
    if (vals)
        vfree(vals, vhint);
    return rc;
}

int zps_msg_send_frames(void *sock, const Zps__Envelope *env, zmq_msg_t *keys, zmq_msg_t *vals,
                        size_t *wire_bytes)
{
    int rc = 0;
    uint8_t stackbuf[512];
    size_t elen = zps__envelope__get_packed_size(env);
    uint8_t *ebuf = elen <= sizeof stackbuf ? stackbuf : malloc(elen);
    zmq_msg_t empty;
    zmq_msg_init(&empty);
    if (vals && !keys)
        keys = &empty;
    size_t klen = keys ? zmq_msg_size(keys) : 0, vlen = vals ? zmq_msg_size(vals) : 0;
    if (!ebuf) {
        rc = ZPS_ENOMEM;
        goto out;
    }
    zps__envelope__pack(env, ebuf);
    if (zmq_send(sock, ebuf, elen, keys ? ZMQ_SNDMORE : 0) < 0) {
        rc = errno == EINTR ? ZPS_EINTR : ZPS_EIO;
        goto out;
    }
    if (keys && zmq_msg_send(keys, sock, vals ? ZMQ_SNDMORE : 0) < 0) {
        rc = ZPS_EIO;
        goto out;
    }
    if (vals && zmq_msg_send(vals, sock, 0) < 0) {
        rc = ZPS_EIO;
        goto out;
    }
    if (wire_bytes)
        *wire_bytes += elen + klen + vlen;
out:
    if (ebuf != stackbuf)
        free(ebuf);
    /* closing a sent message is a no-op; an unsent one is released */
    if (keys)
        zmq_msg_close(keys);
    if (vals)
        zmq_msg_close(vals);
    zmq_msg_close(&empty);
    return rc;
}

/* Matching body case for each message type (0 = no such type). */
static int s_body_for_type(int type)
{
    switch (type) {
    case ZPS__MSG_TYPE__HELLO: return ZPS__ENVELOPE__BODY_HELLO;
    case ZPS__MSG_TYPE__HELLO_REPLY: return ZPS__ENVELOPE__BODY_HELLO_REPLY;
    case ZPS__MSG_TYPE__PULL: return ZPS__ENVELOPE__BODY_PULL;
    case ZPS__MSG_TYPE__PULL_REPLY: return ZPS__ENVELOPE__BODY_PULL_REPLY;
    case ZPS__MSG_TYPE__PUSH: return ZPS__ENVELOPE__BODY_PUSH;
    case ZPS__MSG_TYPE__PUSH_ACK: return ZPS__ENVELOPE__BODY_PUSH_ACK;
    case ZPS__MSG_TYPE__ERROR: return ZPS__ENVELOPE__BODY_ERROR;
    case ZPS__MSG_TYPE__STATS: return ZPS__ENVELOPE__BODY_STATS;
    case ZPS__MSG_TYPE__STATS_REPLY: return ZPS__ENVELOPE__BODY_STATS_REPLY;
    case ZPS__MSG_TYPE__SHUTDOWN: return ZPS__ENVELOPE__BODY_SHUTDOWN;
    case ZPS__MSG_TYPE__SHUTDOWN_ACK: return ZPS__ENVELOPE__BODY__NOT_SET;
    case ZPS__MSG_TYPE__CLOCK: return ZPS__ENVELOPE__BODY_CLOCK;
    case ZPS__MSG_TYPE__CLOCK_ACK: return ZPS__ENVELOPE__BODY__NOT_SET;
    case ZPS__MSG_TYPE__HEARTBEAT: return ZPS__ENVELOPE__BODY_HEARTBEAT;
    case ZPS__MSG_TYPE__DUMP: return ZPS__ENVELOPE__BODY_DUMP;
    case ZPS__MSG_TYPE__DUMP_REPLY: return ZPS__ENVELOPE__BODY_DUMP_REPLY;
    case ZPS__MSG_TYPE__BEAT: return ZPS__ENVELOPE__BODY_BEAT;
    case ZPS__MSG_TYPE__BEAT_REPLY: return ZPS__ENVELOPE__BODY_BEAT_REPLY;
    case ZPS__MSG_TYPE__TABLE_GET: return ZPS__ENVELOPE__BODY_TABLE_GET;
    case ZPS__MSG_TYPE__TABLE_REPLY: return ZPS__ENVELOPE__BODY_TABLE_REPLY;
    case ZPS__MSG_TYPE__FORWARD: return ZPS__ENVELOPE__BODY_FORWARD;
    case ZPS__MSG_TYPE__FORWARD_ACK: return ZPS__ENVELOPE__BODY_FORWARD_ACK;
    case ZPS__MSG_TYPE__SNAP: return ZPS__ENVELOPE__BODY_SNAP;
    case ZPS__MSG_TYPE__SNAP_ACK: return ZPS__ENVELOPE__BODY_SNAP_ACK;
    case ZPS__MSG_TYPE__RECONFIG: return ZPS__ENVELOPE__BODY_RECONFIG;
    case ZPS__MSG_TYPE__RECONFIG_REPLY: return ZPS__ENVELOPE__BODY_RECONFIG_REPLY;
    default: return -1;
    }
}

const char *zps_msg_type_name(int type)
{
    static const char *const names[] = {"none", "hello", "hello-reply", "pull", "pull-reply",
                                        "push", "push-ack", "error", "stats", "stats-reply",
                                        "shutdown", "shutdown-ack", "clock", "clock-ack", "heartbeat"};
    if (type >= 0 && type < (int)(sizeof names / sizeof names[0]))
        return names[type];
    switch (type) {
    case ZPS__MSG_TYPE__DUMP: return "dump";
    case ZPS__MSG_TYPE__DUMP_REPLY: return "dump-reply";
    case ZPS__MSG_TYPE__BEAT: return "beat";
    case ZPS__MSG_TYPE__BEAT_REPLY: return "beat-reply";
    case ZPS__MSG_TYPE__TABLE_GET: return "table-get";
    case ZPS__MSG_TYPE__TABLE_REPLY: return "table-reply";
    case ZPS__MSG_TYPE__FORWARD: return "forward";
    case ZPS__MSG_TYPE__FORWARD_ACK: return "forward-ack";
    case ZPS__MSG_TYPE__SNAP: return "snap";
    case ZPS__MSG_TYPE__SNAP_ACK: return "snap-ack";
    case ZPS__MSG_TYPE__RECONFIG: return "reconfig";
    case ZPS__MSG_TYPE__RECONFIG_REPLY: return "reconfig-reply";
    default: return "unknown";
    }
}

int zps_msg_recv(void *sock, int router, zps_msg_t *m, int flags)
{
    memset(m, 0, sizeof *m);
    m->srcfd = -1;
    zmq_msg_t part;
    int idx = 0, rc = 0;
    int more = 1;
    uint8_t *env_data = NULL;
    size_t env_len = 0;
    zmq_msg_t env_msg;
    int have_env = 0;
    while (more) {
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sock, idx == 0 ? flags : 0) < 0) {
            int e = errno;
            zmq_msg_close(&part);
            if (idx == 0)
                return e == EINTR ? ZPS_EINTR : ZPS_EIO;
            /* mid-message failure: only on context termination */
            snprintf(m->reason, sizeof m->reason, "receive failed mid-message: %s",
                     zmq_strerror(e));
            rc = ZPS_EIO;
            break;
        }
        more = zmq_msg_more(&part);
        m->wire_bytes += zmq_msg_size(&part);
        if (zmq_msg_size(&part) > m->max_frame)
            m->max_frame = zmq_msg_size(&part);
        int slot = idx - (router ? 1 : 0);
        if (router && idx == 0) {
            m->ident = part;
            m->has_ident = 1;
        } else if (slot == 0) {
            const char *pa = zmq_msg_gets(&part, "Peer-Address");
            snprintf(m->peer, sizeof m->peer, "%s", pa ? pa : "?");
            const char *uid = zmq_msg_gets(&part, "User-Id");
            snprintf(m->user, sizeof m->user, "%s", uid ? uid : "");
            m->srcfd = zmq_msg_get(&part, ZMQ_SRCFD);
            env_msg = part;
            have_env = 1;
        } else if (slot - 1 < ZPS_MSG_MAX_BULK) {
            m->bulk[slot - 1] = part;
            m->nbulk = slot;
        } else {
            zmq_msg_close(&part);
            if (!rc) {
                snprintf(m->reason, sizeof m->reason, "too many frames (more than %d)",
                         1 + ZPS_MSG_MAX_BULK);
                rc = ZPS_EPROTO;
            }
        }
        idx++;
    }
    if (rc)
        goto done;
    if (!have_env) {
        snprintf(m->reason, sizeof m->reason, "no envelope frame");
        rc = ZPS_EPROTO;
        goto done;
    }
    env_data = zmq_msg_data(&env_msg);
    env_len = zmq_msg_size(&env_msg);
    if (env_len > ZPS_MSG_MAX_ENVELOPE) {
        snprintf(m->reason, sizeof m->reason,
                 "envelope of %zu bytes is over the limit of %u (not decoded)", env_len,
                 ZPS_MSG_MAX_ENVELOPE);
        rc = ZPS_EPROTO;
        goto done;
    }
    m->env = zps__envelope__unpack(NULL, env_len, env_data);
    if (!m->env) {
        snprintf(m->reason, sizeof m->reason,
                 "envelope of %zu bytes is not a valid zps protobuf message", env_len);
        rc = ZPS_EPROTO;
        goto done;
    }
    if (m->env->version != ZPS_PROTOCOL_VERSION) {
        snprintf(m->reason, sizeof m->reason,
                 "protocol version %u is not supported (this peer speaks version %u)",
                 m->env->version, ZPS_PROTOCOL_VERSION);
        rc = ZPS_EVERSION;
        goto done;
    }
    if (s_body_for_type(m->env->type) != (int)m->env->body_case) {
        snprintf(m->reason, sizeof m->reason, "message type %d does not match its body (%d)",
                 (int)m->env->type, (int)m->env->body_case);
        rc = ZPS_EPROTO;
    }
done:
    if (have_env)
        zmq_msg_close(&env_msg);
    return rc;
}

void zps_msg_close(zps_msg_t *m)
{
    if (m->has_ident)
        zmq_msg_close(&m->ident);
    m->has_ident = 0;
    for (int i = 0; i < m->nbulk; i++)
        zmq_msg_close(&m->bulk[i]);
    m->nbulk = 0;
    if (m->env)
        zps__envelope__free_unpacked(m->env, NULL);
    m->env = NULL;
}

const void *zps_msg_bulk(zps_msg_t *m, int i, size_t *len)
{
    if (i < 0 || i >= m->nbulk) {
        *len = 0;
        return NULL;
    }
    *len = zmq_msg_size(&m->bulk[i]);
    return zmq_msg_data(&m->bulk[i]);
}

const float *zps_msg_floats(zps_msg_t *m, int i, size_t n, float **scratch, size_t *scratch_cap)
{
    size_t len;
    const void *p = zps_msg_bulk(m, i, &len);
    if (len != n * sizeof(float) || (n && !p))
        return NULL;
    if (n == 0) {
        static const float empty[1];
        return empty;
    }
    if (((uintptr_t)p & (sizeof(float) - 1)) == 0)
        return p;
    if (*scratch_cap < n) {
        float *s = realloc(*scratch, n * sizeof(float));
        if (!s)
            return NULL;
        *scratch = s;
        *scratch_cap = n;
    }
    memcpy(*scratch, p, len);
    return *scratch;
}
