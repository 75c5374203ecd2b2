/* Unit tests of zps_msg framing over an inproc DEALER/ROUTER pair. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "check_suites.h"
#include "zps_codec.h"
#include "zps_err.h"
#include "zps_msg.h"

static void *ctx, *router, *dealer;

static void setup(void)
{
    ctx = zmq_ctx_new();
    router = zmq_socket(ctx, ZMQ_ROUTER);
    dealer = zmq_socket(ctx, ZMQ_DEALER);
    int timeo = 2000;
    zmq_setsockopt(router, ZMQ_RCVTIMEO, &timeo, sizeof timeo);
    zmq_setsockopt(dealer, ZMQ_RCVTIMEO, &timeo, sizeof timeo);
    ck_assert_int_eq(zmq_bind(router, "inproc://msgtest"), 0);
    ck_assert_int_eq(zmq_connect(dealer, "inproc://msgtest"), 0);
}

static void teardown(void)
{
    int linger = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(router);
    zmq_close(dealer);
    zmq_ctx_term(ctx);
}

START_TEST(push_roundtrip)
{
    uint64_t keys[] = {0, 1, 1000, UINT64_MAX - 1, UINT64_MAX};
    float vals[] = {NAN, INFINITY, -0.0f, 1e-45f, 3.0f};
    uint8_t *kb = malloc(zps_keys_bound(5));
    long klen = zps_keys_encode(keys, 5, kb, zps_keys_bound(5));
    ck_assert_int_gt(klen, 0);
    float *vb = malloc(sizeof vals);
    memcpy(vb, vals, sizeof vals);
    Zps__Envelope env;
    Zps__Push push = ZPS__PUSH__INIT;
    zps_msg_env(&env, ZPS__MSG_TYPE__PUSH, ZPS__ROLE__ROLE_WORKER, 3, 77);
    push.nkeys = 5;
    push.dim = 1;
    push.seq = 9;
    env.body_case = ZPS__ENVELOPE__BODY_PUSH;
    env.push = &push;
    size_t wire = 0;
    ck_assert_int_eq(zps_msg_send(dealer, NULL, &env, kb, (size_t)klen, vb, sizeof vals, &wire), 0);
    ck_assert_uint_gt(wire, (size_t)klen + sizeof vals);

    zps_msg_t m;
    ck_assert_int_eq(zps_msg_recv(router, 1, &m, 0), 0);
    ck_assert_int_eq(m.has_ident, 1);
    ck_assert_int_eq(m.nbulk, 2);
    ck_assert_uint_eq(m.env->request_id, 77);
    ck_assert_uint_eq(m.env->rank, 3);
    ck_assert_uint_eq(m.env->push->seq, 9);
    size_t len;
    const uint8_t *kf = zps_msg_bulk(&m, 0, &len);
    uint64_t got[5];
    ck_assert_int_eq(zps_keys_decode(kf, len, 5, got, NULL), 0);
    ck_assert_mem_eq(got, keys, sizeof keys);
    float *scratch = NULL;
    size_t cap = 0;
    const float *f = zps_msg_floats(&m, 1, 5, &scratch, &cap);
    ck_assert_ptr_nonnull(f);
    ck_assert_mem_eq(f, vals, sizeof vals); /* bit-exact: NaN, inf, -0, denormal */
    ck_assert_ptr_null(zps_msg_floats(&m, 1, 4, &scratch, &cap)); /* wrong count */

    /* reply through the identity frame reaches the dealer */
    Zps__Envelope ack;
    Zps__PushAck body = ZPS__PUSH_ACK__INIT;
    zps_msg_env(&ack, ZPS__MSG_TYPE__PUSH_ACK, ZPS__ROLE__ROLE_SERVER, 0, 77);
    ack.body_case = ZPS__ENVELOPE__BODY_PUSH_ACK;
    ack.push_ack = &body;
    ck_assert_int_eq(zps_msg_send(router, &m.ident, &ack, NULL, 0, NULL, 0, NULL), 0);
    zps_msg_close(&m);
    ck_assert_int_eq(zps_msg_recv(dealer, 0, &m, 0), 0);
    ck_assert_int_eq(m.env->type, ZPS__MSG_TYPE__PUSH_ACK);
    ck_assert_int_eq(m.nbulk, 0);
    zps_msg_close(&m);
    free(scratch);
}
END_TEST

START_TEST(rejects_garbage_and_versions)
{
    zps_msg_t m;
    /* random bytes as an envelope */
    zmq_send(dealer, "\x0a\xff\xff\xff\xff\xff\xff", 7, 0);
    ck_assert_int_eq(zps_msg_recv(router, 1, &m, 0), ZPS_EPROTO);
    ck_assert_int_eq(m.has_ident, 1); /* can still answer */
    ck_assert_ptr_null(m.env);
    zps_msg_close(&m);

    /* another protocol version */
    Zps__Envelope env;
    Zps__Stats st = ZPS__STATS__INIT;
    zps_msg_env(&env, ZPS__MSG_TYPE__STATS, ZPS__ROLE__ROLE_TOOL, 0, 5);
    env.body_case = ZPS__ENVELOPE__BODY_STATS;
    env.stats = &st;
    env.version = 7;
    zps_msg_send(dealer, NULL, &env, NULL, 0, NULL, 0, NULL);
    ck_assert_int_eq(zps_msg_recv(router, 1, &m, 0), ZPS_EVERSION);
    ck_assert_ptr_nonnull(strstr(m.reason, "version 7"));
    ck_assert_uint_eq(m.env->request_id, 5);
    zps_msg_close(&m);

    /* type that does not match the body */
    env.version = ZPS_PROTOCOL_VERSION;
    env.type = ZPS__MSG_TYPE__PULL;
    zps_msg_send(dealer, NULL, &env, NULL, 0, NULL, 0, NULL);
    ck_assert_int_eq(zps_msg_recv(router, 1, &m, 0), ZPS_EPROTO);
    zps_msg_close(&m);

    /* too many frames: all parts are consumed, the next message is intact */
    zmq_send(dealer, "a", 1, ZMQ_SNDMORE);
    zmq_send(dealer, "b", 1, ZMQ_SNDMORE);
    zmq_send(dealer, "c", 1, ZMQ_SNDMORE);
    zmq_send(dealer, "d", 1, ZMQ_SNDMORE);
    zmq_send(dealer, "e", 1, 0);
    ck_assert_int_eq(zps_msg_recv(router, 1, &m, 0), ZPS_EPROTO);
    ck_assert_ptr_nonnull(strstr(m.reason, "too many frames"));
    zps_msg_close(&m);
    env.type = ZPS__MSG_TYPE__STATS;
    zps_msg_send(dealer, NULL, &env, NULL, 0, NULL, 0, NULL);
    ck_assert_int_eq(zps_msg_recv(router, 1, &m, 0), 0);
    zps_msg_close(&m);

    /* empty envelope frame decodes as version 0 -> version error */
    zmq_send(dealer, "", 0, 0);
    ck_assert_int_eq(zps_msg_recv(router, 1, &m, 0), ZPS_EVERSION);
    zps_msg_close(&m);

    /* nothing waiting */
    ck_assert_int_eq(zps_msg_recv(router, 1, &m, ZMQ_DONTWAIT), ZPS_EIO);
    zps_msg_close(&m);
}
END_TEST

START_TEST(unaligned_floats_are_copied)
{
    /* a values frame whose data is not 4-byte aligned must still decode */
    zmq_msg_t part;
    zps_msg_t m;
    memset(&m, 0, sizeof m);
    _Alignas(8) char raw[16];
    float v[3] = {1.5f, -2.0f, 3.25f};
    memcpy(raw + 1, v, sizeof v);
    ck_assert_int_eq(zmq_msg_init_data(&part, raw + 1, sizeof v, NULL, NULL), 0);
    ck_assert_uint_eq(((uintptr_t)zmq_msg_data(&part)) % 4, 1);
    m.bulk[1] = part;
    m.nbulk = 2;
    zmq_msg_init(&m.bulk[0]);
    float *scratch = NULL;
    size_t cap = 0;
    const float *f = zps_msg_floats(&m, 1, 3, &scratch, &cap);
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_eq(f, scratch);
    ck_assert_mem_eq(f, v, sizeof v);
    ck_assert_uint_eq(((uintptr_t)f) % 4, 0);
    zps_msg_close(&m);
    free(scratch);
}
END_TEST

Suite *suite_msg(void)
{
    Suite *s = suite_create("msg");
    TCase *tc = tcase_create("framing");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, push_roundtrip);
    tcase_add_test(tc, rejects_garbage_and_versions);
    tcase_add_test(tc, unaligned_floats_are_copied);
    suite_add_tcase(s, tc);
    return s;
}
