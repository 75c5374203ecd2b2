/* zps_msg: framing of the wire protocol over ZeroMQ.
 *
 * A message is [identity] envelope [keys] [values]:
 *   identity  only on the server's ROUTER side, added/stripped by ZeroMQ
 *   envelope  a protobuf-c Zps__Envelope (version, role, rank, request id,
 *             type and a typed body)
 *   keys      gap-varint coded sorted keys (zps_codec.h)
 *   values    little-endian values in the message's value codec (f32,
 *             fp16 or int8: zps_vcodec.h)
 * The bulk frames are malloc'd by the sender and handed to ZeroMQ with
 * zmq_msg_init_data, so they are never copied on the way out.  On the way
 * in, bulk frames stay in their zmq_msg_t; zps_msg_floats() copies only
 * when ZeroMQ delivered them unaligned.
 *
 * zps_msg_recv validates the framing (part count, envelope size and decoding,
 * version, type agrees with the body) and returns ZPS_EPROTO / ZPS_EVERSION
 * with a reason, keeping the identity so a server can still answer with an
 * ERROR.  The envelope's size is checked BEFORE it is unpacked (at most
 * ZPS_MSG_MAX_ENVELOPE bytes), so a hostile envelope cannot make protobuf-c
 * allocate much.  It also records what the connection says about the
 * sender: the ZAP User-Id (CURVE identity) and the source descriptor. */
#ifndef ZPS_MSG_H
#define ZPS_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "zps.pb-c.h"

#define ZPS_PROTOCOL_VERSION 1u
#define ZPS_MSG_MAX_BULK 2
#define ZPS_MSG_MAX_ENVELOPE (256u << 10) /* bytes: larger envelopes are refused unread */

typedef struct {
    zmq_msg_t ident;
    int has_ident;
    Zps__Envelope *env;              /* decoded envelope, NULL if invalid */
    zmq_msg_t bulk[ZPS_MSG_MAX_BULK];
    int nbulk;
    size_t wire_bytes;               /* all frames, as received */
    char peer[64];                   /* peer IP address when known, else "?" */
    char reason[160];                /* why it was rejected */
    char user[48];                   /* ZAP User-Id of the connection ("" without CURVE) */
    int srcfd;                       /* the connection's descriptor (-1 unknown) */
    size_t max_frame;                /* largest frame, bytes */
} zps_msg_t;

/* Receive one whole multipart message.  router: expect an identity frame.
 * flags: 0 or ZMQ_DONTWAIT.  Returns 0 (m->env valid), ZPS_EPROTO or
 * ZPS_EVERSION (m->reason says why, m->env may be NULL, identity kept),
 * ZPS_EINTR, or ZPS_EIO (errno EAGAIN when nothing was waiting).  Always
 * call zps_msg_close afterwards, whatever it returned. */
int zps_msg_recv(void *sock, int router, zps_msg_t *m, int flags);
void zps_msg_close(zps_msg_t *m);

/* Bulk frame i: pointer and length (NULL, 0 when absent). */
const void *zps_msg_bulk(zps_msg_t *m, int i, size_t *len);

/* Values frame i as floats, exactly n floats expected: returns a pointer
 * that is 4-byte aligned (the frame itself, or *scratch grown to fit and
 * filled), or NULL if the length is not 4*n (or scratch allocation failed). */
const float *zps_msg_floats(zps_msg_t *m, int i, size_t n, float **scratch, size_t *scratch_cap);

/* Fill the common envelope fields. */
void zps_msg_env(Zps__Envelope *env, Zps__MsgType type, Zps__Role role, uint32_t rank,
                 uint64_t request_id);

/* Send env, then bulk frames (each may be NULL to omit; a NULL keys with
 * non-NULL vals sends an empty keys frame).  Ownership of keys and vals
 * (malloc'd) passes to this call in every case.  ident: the peer on a ROUTER
 * socket (NULL on DEALER).  Returns 0 or ZPS_EIO / ZPS_ENOMEM. */
int zps_msg_send(void *sock, zmq_msg_t *ident, const Zps__Envelope *env, void *keys,
                 size_t keys_len, void *vals, size_t vals_len, size_t *wire_bytes);

/* As zps_msg_send, but the vals frame is released through vfree(vals, vhint)
 * (never free()) once ZeroMQ is done with it -- sent, dropped, or on any
 * failure here -- so a caller can count the reply bytes still queued. */
int zps_msg_send_tracked(void *sock, zmq_msg_t *ident, const Zps__Envelope *env, void *keys,
                         size_t keys_len, void *vals, size_t vals_len, zmq_free_fn *vfree,
                         void *vhint, size_t *wire_bytes);

/* As zps_msg_send, with bulk frames already in zmq_msg_t form (keys and
 * vals may be NULL to omit; a NULL keys with non-NULL vals sends an empty
 * keys frame).  The frames are consumed (closed) in every case. */
int zps_msg_send_frames(void *sock, const Zps__Envelope *env, zmq_msg_t *keys, zmq_msg_t *vals,
                        size_t *wire_bytes);

/* Name of a message type for logs. */
const char *zps_msg_type_name(int type);

#endif
