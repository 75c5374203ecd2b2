/* ps_server: the shard's request loop.
 *
 * DESIGN
 * One thread, one ROUTER socket, no locks.  The loop polls the socket and
 * drains every waiting message before polling again.  Each request is
 * handled to completion: keys are decoded into a scratch array, validated
 * (count, coding, ownership by this shard, finite gradients) and only then
 * applied, so an ERROR reply means nothing changed.  Table work is done in
 * chunks of PS_CHUNK keys: the batched table call hashes and prefetches the
 * chunk, then the optimizer touches rows that are already in cache.
 *
 * Pull of a key that was never pushed answers its initial value (a pure
 * function of seed and key) without inserting it, so reading a model never
 * grows it.  Reply values are malloc'd and handed to ZeroMQ (no copy).
 *
 * Consistency.  Under ssp:N and bsp the server keeps every worker's finished
 * clock (the clock of its last push marked "tick"), the time it was last
 * heard from, and whether it is still part of the clock.  A pull stamped
 * with clock t is answered only when the slowest live worker has finished
 * clock t-N-1 (bsp: N = 0); otherwise the message is held in a queue and
 * answered when the minimum advances, so the wait costs nothing while it
 * lasts.  Under bsp, pushes are not applied at once: they are summed (sum
 * gradients) or example-weighted (mean gradients) into an accumulator
 * table, and when every live worker has finished the clock the combined
 * gradient is applied once, so all workers then pull the same weights.
 * A worker silent for longer than the heartbeat timeout is dropped from the
 * clock (logged); if it speaks again it rejoins, fast-forwarded to the
 * slowest live worker's clock so it does not stall the others.
 *
 * Exactly once.  Every push carries (worker rank, process nonce, sequence
 * number); the server keeps per rank the nonce and a dedup window
 * (ps_dedup: low-water mark + bitmap), applies each sequence once in any
 * order of arrival, records it only after the push applied, and
 * acknowledges a copy without applying it, so clients may retry freely.
 * The records are part of every checkpoint; acks carry durable_seq (the
 * low-water mark in the last written checkpoint).  A push also carries how
 * many pushes the client has had acknowledged by this server: after a
 * restore, the difference with the checkpoint's applied count is what the
 * crash took from this server, and is logged; clients keep every push
 * until durable_seq covers it and resend those, so they are applied again
 * (exactly once) rather than lost.
 *
 * All or nothing.  A push goes through zps_shard's transaction: every
 * row is updated in place with an undo copy (one pass over the rows) and
 * refused if any would not be finite; then the new keys are checked
 * against --max-keys / --max-memory-mb and inserted.  Any refusal leaves
 * the tables as they were.
 *
 * Who speaks.  Under CURVE the ZAP handler gives each allowed key an
 * identity (worker-R, admin, ro:NAME), read per message from the User-Id.
 * In both modes a rank is bound to one connection (psv_speaks_for); pushes,
 * clocks and heartbeats count only from it.  Connections are admitted up to
 * --max-connections and forgotten when the socket monitor reports their
 * disconnect (their held pulls are dropped, their ranks unbound).
 *
 * Bounded loop.  At most drain_batch messages (or 50 ms) are handled
 * between maintenance passes (ZAP, disconnects, heartbeats, checkpoints).
 * Replies never block: a peer whose queue is full loses the reply
 * (dropped_replies).  See docs/security.md.
 *
 * Checkpoints fork(): the child writes the copy-on-write image of the table
 * (ps_ckpt.c) while the parent goes on serving; the pause is the fork itself
 * (page-table copy), logged with each checkpoint.
 *
 * Shutdown: *stop (set by SIGTERM/SIGINT in main) or a SHUTDOWN request ends
 * the loop after the message in hand; replies already queued are flushed by
 * the socket's linger period when it closes.
 *
 * Files.  One module in six files sharing the private header ps_srv.h
 * (functions shared between them carry the prefix psv_): this file (set-up,
 * the loop, dispatch, maintenance, save), ps_srv_net.c (replies,
 * connections), ps_srv_auth.c (tokens, CURVE/ZAP, rank binding),
 * ps_srv_exact.c (exactly once, checkpoints, restore), ps_srv_sync.c
 * (ssp/bsp), ps_srv_req.c (request handlers).  The rows and optimizers
 * are zps_shard's, the clocks ps_clock's, the dedup window ps_dedup's. */
#include "ps_srv.h"

void ps_server_conf_defaults(ps_server_conf_t *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->bind, sizeof c->bind, "tcp://127.0.0.1:0");
    c->rank = 0;
    c->nservers = 1;
    c->ntables = 1;
    zps_optim_defaults(&c->tables[0], ZPS_OPT_SGD);
    c->capacity_hint = 1 << 20;
    c->max_msg_bytes = 1ULL << 30;
    c->max_keys = 1ULL << 26;
    c->max_connections = 1000;
    c->max_held_per_peer = 256;
    c->max_held_total = 8192;
    c->max_held_bytes = 256ULL << 20;
    c->max_reply_bytes = 256ULL << 20;
    c->max_reply_total = 1024ULL << 20;
    c->sndhwm = 4096;
    c->drain_batch = 256;
    c->threads = 0; /* auto */
    c->admit.ids = 1u << 20;             /* admission: off, an 8 MiB sketch when count:N */
    c->join_rate_mb = 200;               /* replication: snapshots to joiners */
    c->join_buffer_bytes = 1024ULL << 20;
    c->left_rows_ms = 600000; /* as long as a donor keeps a join's record */
    c->admit.seed = 0x61646d6974736b31ULL;
}

/* tcp://host:0 -> tcp://host:* (ZeroMQ's spelling of "any free port"). */
static void s_bind_spec(const char *in, char *out, size_t len)
{
    size_t n = strlen(in);
    if (n >= 2 && strcmp(in + n - 2, ":0") == 0)
        snprintf(out, len, "%.*s:*", (int)(n - 2), in);
    else
        snprintf(out, len, "%s", in);
}

/* --ready-file: the endpoint, through the atomic writer (a reader sees the
 * whole line or no file; a symlink or another user's file is refused). */
static int s_write_ready(const char *path, const char *endpoint, char *err, size_t errlen)
{
    zps_out_t *o = zps_out_open(path, err, errlen);
    if (!o)
        return ZPS_EIO;
    fprintf(zps_out_file(o), "%s\n", endpoint);
    return zps_out_close(&o, 1, err, errlen);
}

/* 64 random bits (getrandom; time and pid if that fails), never 0. */
static uint64_t s_random64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
        v = zps_mix64((uint64_t)zps_now_ns() ^ ((uint64_t)getpid() << 40), 0x5eed);
    return v ? v : 1;
}

/* --threads auto: this machine's online cores, 1 to PS_AUTO_THREADS_MAX */
#define PS_AUTO_THREADS_MAX 8
static uint32_t s_auto_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : n > PS_AUTO_THREADS_MAX ? PS_AUTO_THREADS_MAX : (uint32_t)n;
}

/* The ms the shard's job clock follows (zps_shard_clock): the wall clock in
 * a replicated job, whose servers copy rows and their stamps between them,
 * else this server's monotonic time */
static int64_t s_shard_ms(const ps_server_t *s)
{
    return s->conf.coordinator[0] ? zps_wall_ms() : zps_now_ms();
}

ps_server_t *ps_server_new(const ps_server_conf_t *conf, zps_log_t *log, char *err, size_t errlen)
{
    ps_server_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->conf = *conf;
    s->log = log;
    s->start_ms = zps_now_ms();
    /* (replicated: a server added to a running job takes a rank past the
     * first --num-servers, up to the coordinator's slots, which checks it) */
    if (conf->nservers == 0 || (conf->rank >= conf->nservers && !conf->coordinator[0]) ||
        conf->rank >= ZPS_RANGES_MAX_SERVERS) {
        snprintf(err, errlen, "rank %u is not within %u servers", conf->rank, conf->nservers);
        goto fail;
    }
    if (conf->ntables == 0 || conf->ntables > PS_MAX_TABLES) {
        snprintf(err, errlen, "need 1..%d tables, got %u", PS_MAX_TABLES, conf->ntables);
        goto fail;
    }
    for (uint32_t i = 0; i < conf->ntables; i++) {
        ps_tab_t *tb = &s->tabs[i];
        char why[200];
        tb->o = conf->tables[i];
        if (i == 0 && conf->accum != PS_ACCUM_AUTO)
            tb->o.accum = conf->accum == PS_ACCUM_UF16 ? ZPS_ACCUM_UF16 : ZPS_ACCUM_F32;
        else if (i == 0 && tb->o.kind == ZPS_OPT_FTRL && (conf->bound.expire_s || conf->bound.evict))
            tb->o.accum = ZPS_ACCUM_UF16; /* 16-byte entries with the stamp: docs/operations.md */
        if (zps_optim_validate(&tb->o, why, sizeof why)) {
            snprintf(err, errlen, "table %u: %s", i, why);
            goto fail;
        }
        tb->dim = tb->o.dim;
        if (tb->dim > 1024) {
            snprintf(err, errlen, "table %u: dim %u is over the limit of 1024", i, tb->dim);
            goto fail;
        }
        tb->needs_init = tb->o.init_scale != 0.0f;
        zps_optim_describe(&tb->o, tb->desc, sizeof tb->desc);
        tb->sh = zps_shard_new(&tb->o, conf->capacity_hint);
        tb->t = tb->sh ? zps_shard_table(tb->sh) : NULL;
        if (!tb->t) {
            snprintf(err, errlen, "table %u: cannot allocate for %llu keys", i,
                     (unsigned long long)conf->capacity_hint);
            goto fail;
        }
    }
    uint32_t threads = conf->threads ? conf->threads : s_auto_threads();
    if (threads > 1) { /* big requests' table work over several threads */
        s->pool = zps_pool_new(threads);
        for (uint32_t i = 0; s->pool && i < conf->ntables; i++)
            if (zps_shard_set_pool(s->tabs[i].sh, s->pool) != 0) {
                snprintf(err, errlen, "out of memory for --threads %u", threads);
                goto fail;
            }
        if (!s->pool) {
            snprintf(err, errlen, "cannot start --threads %u threads", threads);
            goto fail;
        }
        zps_info(log, "threads: pulls and pushes of over %d keys are split over %u threads%s",
                 ZPS_SHARD_BLOCK, threads, conf->threads ? "" : " (--threads auto: the cores)");
    }
    if (conf->admit.mode != ZPS_ADMIT_OFF) { /* admission */
        if (conf->consistency == 2) {
            snprintf(err, errlen, "--admit is not supported with --consistency bsp (its "
                     "accumulator inserts keys outside the shard's push path)");
            goto fail;
        }
        int rc = zps_shard_set_admit(s->tabs[0].sh, &conf->admit);
        if (rc) {
            snprintf(err, errlen, rc == ZPS_ENOMEM ? "out of memory for the --admit sketch of "
                     "%llu ids" : "invalid --admit settings (%llu ids)",
                     (unsigned long long)conf->admit.ids);
            goto fail;
        }
        zps_admit_stats_t ast;
        zps_shard_admit_stats(s->tabs[0].sh, &ast);
        if (conf->admit.mode == ZPS_ADMIT_COUNT)
            zps_info(log, "admission: a key is stored once pushed %u times (count-min sketch, "
                     "4 x %llu counters, %.1f MiB, sized for %llu ids)", conf->admit.count,
                     (unsigned long long)(ast.sketch_bytes / 4), (double)ast.sketch_bytes / 1048576.0,
                     (unsigned long long)conf->admit.ids);
        else
            zps_info(log, "admission: a key is stored with probability %g per push",
                     conf->admit.prob);
    }
    if (conf->bound.expire_s || conf->bound.evict) { /* expiry, eviction */
        if (conf->consistency == 2) {
            snprintf(err, errlen, "--expire-after and --evict are not supported with "
                     "--consistency bsp (its accumulator inserts keys outside the shard's push "
                     "path)");
            goto fail;
        }
        zps_bound_conf_t bc = conf->bound;
        bc.max_keys = conf->limit_keys; /* the table grows for the cap, not past it */
        bc.wall_clock = conf->coordinator[0] != 0; /* replicas copy rows and stamps */
        int rc = zps_shard_set_bound(s->tabs[0].sh, &bc);
        if (rc) {
            snprintf(err, errlen, "out of memory for table 0");
            goto fail;
        }
        s->tabs[0].t = zps_shard_table(s->tabs[0].sh);
        zps_shard_clock(s->tabs[0].sh, s_shard_ms(s));
        if (conf->bound.expire_s)
            zps_info(log, "expiry: table 0 rows not updated in more than %u s of the %s are "
                     "deleted", conf->bound.expire_s,
                     bc.wall_clock ? "wall clock (a replicated job)" : "job's running time");
        if (conf->bound.evict) {
            char cap[96] = "";
            if (conf->limit_keys)
                snprintf(cap, sizeof cap, "%llu keys", (unsigned long long)conf->limit_keys);
            if (conf->limit_memory_bytes)
                snprintf(cap + strlen(cap), sizeof cap - strlen(cap), "%s%.0f MiB of tables",
                         cap[0] ? " or " : "", (double)conf->limit_memory_bytes / 1048576.0);
            zps_info(log, "eviction: at %s, table 0 makes room by evicting the least recently "
                     "updated rows (sampled LRU of %d)", cap, ZPS_SHARD_EVICT_SAMPLES);
        }
    }
    s->min_clock = UINT64_MAX;
    s->rng = 0x853c49e6748fea9bULL + conf->rank;
    s->nonce = s_random64();
    s->id_seed = s_random64();
    s->maint_ms = s->start_ms;
    s->kc = ps_keycache_new(1024, 4u << 20);
    if (!s->kc) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (conf->consistency) {
        if (conf->num_workers == 0 || conf->num_workers > 65536) {
            snprintf(err, errlen, "ssp/bsp need the worker count (--num-workers), got %u",
                     conf->num_workers);
            goto fail;
        }
        s->clock = ps_clock_new(conf->num_workers, conf->consistency == 2 ? 0 : conf->staleness,
                                s->start_ms);
        if (!s->clock) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        s->min_clock = ps_clock_min(s->clock);
    }
    if (conf->exit_when_done) {
        if (conf->num_workers == 0 || conf->num_workers > 65536) {
            snprintf(err, errlen, "--exit-when-done needs the worker count (--num-workers), got %u",
                     conf->num_workers);
            goto fail;
        }
        if (!(s->done = ps_done_new(conf->num_workers))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    s->ctx = zmq_ctx_new();
    s->sock = s->ctx ? zmq_socket(s->ctx, ZMQ_ROUTER) : NULL;
    if (!s->sock) {
        snprintf(err, errlen, "cannot create ZeroMQ socket: %s", zmq_strerror(errno));
        goto fail;
    }
    /* fail closed: a partial CURVE configuration does not start */
    if (conf->allow_dir[0] && !conf->curve_secret[0]) {
        snprintf(err, errlen, "--allow-dir needs --curve-secret SERVER.key (without it the "
                 "server would run in plaintext)");
        goto fail;
    }
    if (conf->curve_secret[0]) {
        zps_curve_pair_t pair;
        char why[1300];
        memset(&pair, 0, sizeof pair);
        if (zps_curve_read(conf->curve_secret, &pair, why, sizeof why) != 0 || !pair.secret_z85[0]) {
            snprintf(err, errlen, "--curve-secret: %s", pair.public_z85[0] && !pair.secret_z85[0]
                                           ? "needs a .key file (with the secret key)"
                                           : why);
            goto fail;
        }
        if (!conf->allow_dir[0]) {
            snprintf(err, errlen, "--curve-secret needs --allow-dir DIR with the clients' .pub files");
            goto fail;
        }
        if (psv_read_allow_dir(s, conf->allow_dir, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s", why);
            goto fail;
        }
        /* the ZAP handler must exist before the socket binds */
        s->zap = zmq_socket(s->ctx, ZMQ_REP);
        if (!s->zap || zmq_bind(s->zap, "inproc://zeromq.zap.01") != 0) {
            snprintf(err, errlen, "cannot start the ZAP handler: %s", zmq_strerror(errno));
            goto fail;
        }
        int one = 1;
        if (zmq_setsockopt(s->sock, ZMQ_CURVE_SERVER, &one, sizeof one) ||
            zmq_setsockopt(s->sock, ZMQ_CURVE_SECRETKEY, pair.secret_z85, ZPS_Z85_LEN) ||
            zmq_setsockopt(s->sock, ZMQ_ZAP_DOMAIN, "zps", 3)) {
            snprintf(err, errlen, "cannot turn CURVE on: %s", zmq_strerror(errno));
            goto fail;
        }
        s->curve = 1;
        size_t nadmin = 0, nworker = 0;
        for (size_t i = 0; i < s->nallowed; i++) {
            nadmin += !strcmp(s->allowed[i].user, "admin");
            nworker += !strncmp(s->allowed[i].user, "worker-", 7);
        }
        zps_info(log, "CURVE on: %zu client keys allowed from %s (%zu admin, %zu worker, %zu "
                 "read-only)", s->nallowed, conf->allow_dir, nadmin, nworker,
                 s->nallowed - nadmin - nworker);
    }
    if (conf->admin_token_file[0]) {
        if (psv_read_token(conf->admin_token_file, s->admin_token, &s->admin_token_len, err,
                           errlen) != 0)
            goto fail;
    }
    /* frames up to twice --max-msg-mb are received and answered with an
     * ERROR (s_oversized); beyond that ZeroMQ drops the connection before
     * allocating them, as a last bound on memory */
    int64_t maxmsg = conf->max_msg_bytes > (uint64_t)INT64_MAX / 2 ? -1 : (int64_t)conf->max_msg_bytes * 2;
    int rcvhwm = 100000, sndhwm = conf->sndhwm ? (int)conf->sndhwm : 4096, linger = 2000;
    int mandatory = 1, sndtimeo = 0;
    zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(s->sock, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm);
    zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof linger);
    /* a reply to a full or vanished peer fails at once (counted), never blocks */
    zmq_setsockopt(s->sock, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory);
    zmq_setsockopt(s->sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
    /* disconnects: forget the connection, its binding and its held pulls */
    char monep[64];
    snprintf(monep, sizeof monep, "inproc://ps-monitor-%p", (void *)s);
    if (zmq_socket_monitor(s->sock, monep, ZMQ_EVENT_DISCONNECTED) == 0) {
        s->mon = zmq_socket(s->ctx, ZMQ_PAIR);
        if (s->mon && zmq_connect(s->mon, monep) != 0) {
            zmq_close(s->mon);
            s->mon = NULL;
        }
    }
    s->conn_cap = 64;
    while (s->conn_cap < 2 * (size_t)(conf->max_connections ? conf->max_connections : 1000))
        s->conn_cap *= 2;
    s->conns = calloc(s->conn_cap, sizeof *s->conns);
    s->outq = calloc(1, sizeof *s->outq);
    s->tmp_row = malloc(4 * (3 * 1024 + 1) * sizeof(float));
    if (!s->conns || !s->tmp_row) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s->tmp_out = s->tmp_row + (3 * 1024 + 1);
    s->tmp_g = s->tmp_out + (3 * 1024 + 1);
    char spec[300];
    s_bind_spec(conf->bind, spec, sizeof spec);
    if (zmq_bind(s->sock, spec) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", conf->bind, zmq_strerror(errno));
        goto fail;
    }
    size_t elen = sizeof s->endpoint;
    zmq_getsockopt(s->sock, ZMQ_LAST_ENDPOINT, s->endpoint, &elen);
    if (conf->coordinator[0]) {
        const char *no = conf->consistency == 2 ? "--consistency bsp (not built yet)"
                         : conf->curve_secret[0] ? "CURVE (--curve-secret: the coordinator and "
                                                   "the servers' copies speak plaintext only)"
                                                 : NULL;
        if (no) {
            snprintf(err, errlen, "--coordinator does not work with %s", no);
            goto fail;
        }
    }
    {
        /* before the membership thread: its first beat says what was restored */
        char why[1300];
        if (psv_restore(s, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s", why);
            goto fail;
        }
    }
    if (conf->coordinator[0]) {
        /* replication: the coordinator gives the lease and the range table */
        s->ranges = calloc(1, sizeof *s->ranges);
        ps_member_conf_t mc = {.coordinator = conf->coordinator, .rank = conf->rank,
                               .nonce = s->nonce,
                               .endpoint = conf->announce[0] ? conf->announce : s->endpoint,
                               .zmq_ctx = s->ctx, .restored_ms = s->rst_ms,
                               .restored_table = s->rst_table, .restored_len = s->rst_len};
        char why[300];
        if (!s->ranges || !(s->member = ps_member_new(&mc, s->log, why, sizeof why))) {
            snprintf(err, errlen, "--coordinator %s: %s", conf->coordinator,
                     s->ranges ? why : "out of memory");
            goto fail;
        }
        free(s->rst_table);
        s->rst_table = NULL;
        zps_info(s->log, "replicated job: coordinator %s; pushes and pulls are refused until it "
                 "grants a lease", conf->coordinator);
    }
    s->ckpt_last_ms = zps_now_ms();
    /* metrics: before the ready file, so a launcher that waits
     * for it finds the endpoint up */
    if (conf->metrics_listen[0]) {
        char why[300];
        if (psv_prom_new(s, why, sizeof why) != 0) {
            snprintf(err, errlen, "--metrics-listen: %s", why);
            goto fail;
        }
    }
    if (conf->ready_file[0]) {
        char why[600];
        if (s_write_ready(conf->ready_file, s->endpoint, why, sizeof why) != 0) {
            snprintf(err, errlen, "cannot write the ready file: %s", why);
            goto fail;
        }
    }
    return s;
fail:
    ps_server_destroy(&s);
    return NULL;
}

void ps_server_destroy(ps_server_t **sp)
{
    if (!sp || !*sp)
        return;
    ps_server_t *s = *sp;
    psv_prom_destroy(s); /* metrics: stops the HTTP thread first */
    ps_member_destroy(&s->member); /* its thread's socket, before the context goes */
    psv_join_destroy(s);
    free(s->ranges);
    free(s->rst_table);
    if (s->sock) {
        if (s->mon)
            zmq_socket_monitor(s->sock, NULL, 0);
        zmq_close(s->sock);
    }
    if (s->mon)
        zmq_close(s->mon);
    if (s->zap)
        zmq_close(s->zap);
    free(s->allowed);
    /* the entries' references; replies still queued hold their own until
     * ZeroMQ releases them (at the latest in zmq_ctx_term below) */
    for (size_t i = 0; s->conns && i < s->conn_cap; i++)
        if (s->conns[i].key >= 2)
            psv_outc_put(s->conns[i].out);
    free(s->conns);
    free(s->fd_stale);
    free(s->ranks);
    free(s->rowp);
    free(s->tmp_row);
    if (s->ctx)
        zmq_ctx_term(s->ctx); /* every queued reply has been released: outq is idle */
    free(s->outq);
    for (int i = 0; i < PS_MAX_TABLES; i++) {
        zps_shard_destroy(&s->tabs[i].sh);
        s->tabs[i].t = NULL;
    }
    zps_pool_destroy(&s->pool); /* after the shards that borrowed it */
    for (size_t i = 0; i < s->nheld; i++) {
        zps_msg_close(s->held[i].m);
        free(s->held[i].m);
    }
    free(s->held);
    zps_table_destroy(&s->acc);
    ps_keycache_destroy(&s->kc);
    if (s->ckpt_pid > 0)
        waitpid(s->ckpt_pid, NULL, 0);
    free(s->clients);
    free(s->lost);
    ps_clock_destroy(&s->clock);
    ps_done_destroy(&s->done);
    free(s->keys);
    free(s->fscratch);
    free(s);
    *sp = NULL;
}

const char *ps_server_endpoint(const ps_server_t *s) { return s->endpoint; }

const char *ps_server_metrics_address(const ps_server_t *s) { return psv_prom_address(s); }

uint32_t ps_server_ntables(const ps_server_t *s) { return s->conf.ntables; }

void ps_server_get_stats(const ps_server_t *s, ps_server_stats_t *out)
{
    *out = s->st;
    out->keys_stored = 0;
    out->bytes_used = 0;
    for (uint32_t i = 0; i < s->conf.ntables; i++) {
        out->keys_stored += zps_table_size(s->tabs[i].t);
        out->bytes_used += zps_table_bytes(s->tabs[i].t);
        zps_admit_stats_t a; /* admission */
        zps_shard_admit_stats(s->tabs[i].sh, &a);
        out->admitted_keys += a.admitted_keys;
        out->admission_rejected_keys += a.rejected_keys;
        out->admission_rejected_pushes += a.rejected_pushes;
        out->admission_sketch_bytes += a.sketch_bytes;
        zps_bound_stats_t b;
        zps_shard_bound_stats(s->tabs[i].sh, &b);
        out->expired_keys += b.expired;
        out->evicted_keys += b.evicted;
        out->split_requests += zps_shard_split_requests(s->tabs[i].sh);
    }
    out->relays = s->join.relays_in;
    out->relay_keys = s->join.relay_keys;
    out->relays_known = s->join.relays_known;
    out->uptime_ms = (uint64_t)(zps_now_ms() - s->start_ms);
    out->held_pulls = s->nheld;
    out->server_nonce = s->nonce;
    out->min_clock = s->min_clock == UINT64_MAX ? 0 : s->min_clock;
}

int ps_server_save(ps_server_t *s, const char *dir, char *err, size_t errlen)
{
    ps_tab_t *tb = &s->tabs[0];
    int64_t t0 = zps_now_ms();
    /* replicated: shards are numbered by the table's rank slots */
    uint32_t nsv = s->ranges && s->ranges->version ? s->ranges->nservers : s->conf.nservers;
    zps_mf_writer_t *w = zps_mf_writer_new(dir, s->conf.rank, nsv, tb->dim, err, errlen);
    if (!w)
        return ZPS_EIO;
    float wbuf[1024];
    zps_table_cur_t cursor = ZPS_TABLE_CUR_INIT;
    uint64_t key;
    float *row;
    int rc = 0;
    size_t saved = 0;
    while (!rc && zps_table_next(tb->t, &cursor, &key, &row)) {
        /* replicated: each range is saved once, by its primary */
        if (s->ranges && zps_ranges_primary(s->ranges, zps_range_of(key)) != s->conf.rank)
            continue;
        saved++;
        zps_optim_weights(&tb->o, row, wbuf);
        rc = zps_mf_writer_add(w, key, wbuf);
    }
    int rc2 = zps_mf_writer_close(&w, err, errlen);
    if (rc && !rc2)
        snprintf(err, errlen, "writing shard to %s failed", dir);
    rc = rc ? rc : rc2;
    /* the manifest: server 0's job, or in a replicated job the lowest
     * server still in the table, listing the servers whose shards make
     * the model (each writes its primary ranges) */
    uint8_t *present = NULL;
    uint32_t writer = 0;
    if (!rc && s->ranges) {
        present = calloc(nsv, 1);
        if (!present) {
            snprintf(err, errlen, "out of memory");
            rc = ZPS_ENOMEM;
        }
        writer = UINT32_MAX;
        for (uint32_t r = 0; present && r < nsv; r++) {
            present[r] = (uint8_t)zps_ranges_member(s->ranges, r);
            if (present[r] && writer == UINT32_MAX)
                writer = r;
        }
    }
    if (!rc && s->conf.rank == writer)
        rc = zps_mf_write_manifest(dir, s->conf.model_name[0] ? s->conf.model_name : "kv",
                                   tb->dim, nsv, tb->desc, s->conf.options, present,
                                   err, errlen);
    free(present);
    if (!rc)
        zps_info(s->log, "saved %zu keys%s to %s in %lld ms", saved,
                 s->ranges ? " (the ranges this server is primary of)" : "", dir,
                 (long long)(zps_now_ms() - t0));
    return rc;
}

/* Drained by remove-server: it answers the late pushes of the ranges it
 * held (a client's retry of one it had not acknowledged: possibly the only
 * copy with one replica) until none came for PS_RETIRE_QUIET_MS, at least
 * PS_RETIRE_MIN_MS after it learnt it, and no forward to a joiner waits
 * for its acknowledgement; then it may exit. */
#define PS_RETIRE_MIN_MS 3000
#define PS_RETIRE_QUIET_MS 1500
static int s_retire_done(ps_server_t *s)
{
    int64_t now = zps_now_ms();
    if (!s->retired_ms) {
        s->retired_ms = now;
        zps_info(s->log, "drained: answering late pushes for at least %d ms, then exiting",
                 PS_RETIRE_MIN_MS);
    }
    if (now - s->retired_ms < PS_RETIRE_MIN_MS || now - s->retired_push_ms < PS_RETIRE_QUIET_MS)
        return 0;
    return !psv_join_forwards_waiting(s);
}

/* Give back scratch memory a big request grew (a 2^26-key request must not
 * keep hundreds of MB for good). */
static void s_trim_scratch(ps_server_t *s)
{
    if (s->keys_cap > PS_SCRATCH_KEEP) {
        free(s->keys);
        s->keys = NULL;
        s->keys_cap = 0;
    }
    if (s->fscratch_cap > 4 * (size_t)PS_SCRATCH_KEEP) {
        free(s->fscratch);
        s->fscratch = NULL;
        s->fscratch_cap = 0;
    }
    if (s->rowp_cap > PS_SCRATCH_KEEP) {
        free(s->rowp);
        s->rowp = NULL;
        s->rowp_cap = 0;
    }
    for (uint32_t i = 0; i < s->conf.ntables; i++)
        zps_shard_trim(s->tabs[i].sh, PS_SCRATCH_KEEP);
}

void psv_handle(ps_server_t *s, zps_msg_t *m)
{
    int t = m->env->body_case;
    int push = t == ZPS__ENVELOPE__BODY_PUSH;
    if (psv_admit(s, m) != 0 || psv_identity(s, m) != 0) {
        if (push) {
            s->st.received_pushes++;
            psv_push_rejected(s, NULL);
        }
        return;
    }
    if (push && (!m->env->push->client_nonce || !m->env->push->seq)) {
        s->st.received_pushes++;
        psv_push_rejected(s, NULL);
        psv_reply_error(s, m, ZPS_ESEQ, "a push needs a client nonce and a sequence number >= 1 "
                        "(got nonce %s, seq %llu)", m->env->push->client_nonce ? "set" : "0",
                        (unsigned long long)m->env->push->seq);
        return;
    }
    /* who speaks for the rank: heartbeats and clocks count, and pushes are
     * accepted, only from the connection bound to it */
    int worker = m->env->role == ZPS__ROLE__ROLE_WORKER;
    if (worker || push || t == ZPS__ENVELOPE__BODY_CLOCK || t == ZPS__ENVELOPE__BODY_HEARTBEAT) {
        int hello = t == ZPS__ENVELOPE__BODY_HELLO;
        uint64_t nonce = push ? m->env->push->client_nonce : hello ? m->env->hello->client_nonce : 0;
        int speaks = psv_speaks_for(s, m, nonce, hello && worker);
        if (speaks) {
            psv_touch(s, m);
        } else if (push || t == ZPS__ENVELOPE__BODY_CLOCK || t == ZPS__ENVELOPE__BODY_HEARTBEAT) {
            zps_log_limited(s->log, LC_PERM, 1000, "%s at %s claims rank %u, which another "
                            "connection speaks for: refused", zps_msg_type_name(m->env->type),
                            m->peer, m->env->rank);
            if (push) {
                s->st.received_pushes++;
                psv_push_rejected(s, NULL);
            }
            if (t == ZPS__ENVELOPE__BODY_HEARTBEAT) {
                s->st.perm_denied++;
                return; /* never answered */
            }
            psv_reply_error(s, m, ZPS_EPERM, "rank %u is bound to another connection; a restarted "
                            "worker must say HELLO first", m->env->rank);
            return;
        }
    }
    /* replication: no lease, no service (a server cut off from the
     * coordinator may already have been replaced) */
    if (s->member && (push || t == ZPS__ENVELOPE__BODY_PULL)) {
        psv_table_refresh(s);
        /* (drained by remove-server: it holds nothing, and takes only the
         * late pushes of ranges it held, psv_join_accepts) */
        int retired = push && ps_member_state(s->member) == PS_MEMBER_RETIRED;
        if (retired)
            s->retired_push_ms = zps_now_ms();
        if (!retired && !ps_member_leased(s->member, zps_now_ms())) {
            if (push) {
                s->st.received_pushes++;
                psv_push_rejected(s, NULL);
            }
            int st = ps_member_state(s->member);
            zps_log_limited(s->log, LC_REJECT, 1000, "%s refused: no lease from the coordinator (%s)",
                            zps_msg_type_name(m->env->type),
                            st == PS_MEMBER_OUT ? "removed from the range table" : "not answered yet");
            psv_reply_error(s, m, ZPS_ENOLEASE, "server %u holds no lease from the coordinator "
                            "(%s): retry, or use the current range table", s->conf.rank,
                            st == PS_MEMBER_OUT ? "it was removed from the range table"
                                                : "no answer from it yet");
            return;
        }
    }
    /* metrics: pull and push handling time */
    int64_t t0 = s->prom && (push || t == ZPS__ENVELOPE__BODY_PULL) ? zps_now_ns() : 0;
    switch (t) {
    case ZPS__ENVELOPE__BODY_CLOCK: psv_on_clock(s, m); break;
    case ZPS__ENVELOPE__BODY_HEARTBEAT: break;
    case ZPS__ENVELOPE__BODY_HELLO: psv_on_hello(s, m); break;
    case ZPS__ENVELOPE__BODY_PULL: psv_on_pull(s, m); break;
    case ZPS__ENVELOPE__BODY_PUSH: s->st.received_pushes++; psv_on_push(s, m); break;
    case ZPS__ENVELOPE__BODY_STATS: psv_on_stats(s, m); break;
    case ZPS__ENVELOPE__BODY_SHUTDOWN: psv_on_shutdown(s, m); break;
    case ZPS__ENVELOPE__BODY_DUMP: psv_on_dump(s, m); break;
    case ZPS__ENVELOPE__BODY_FORWARD: psv_on_forward(s, m); break;
    case ZPS__ENVELOPE__BODY_SNAP: psv_on_snap(s, m); break;
    default:
        psv_reply_error(s, m, ZPS_EPROTO, "unexpected message type %s from a client",
                        zps_msg_type_name(m->env->type));
        break;
    }
    if (t0)
        psv_prom_request(s, push, zps_now_ns() - t0);
}

/* Heartbeats, checkpoints, ZAP and disconnects: run at least every 100 ms
 * whatever the load (the loop handles at most drain_batch messages, or
 * 50 ms of them, between two passes). */
static void s_maintenance(ps_server_t *s)
{
    int64_t now = zps_now_ms();
    if (now - s->maint_ms > (int64_t)s->st.maintenance_max_gap_ms)
        s->st.maintenance_max_gap_ms = (uint64_t)(now - s->maint_ms);
    s->maint_ms = now;
    s->st.maintenance_passes++;
    for (int k = 0; s->zap && k < 64; k++) {
        zmq_pollitem_t it = {s->zap, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 0) <= 0 || !(it.revents & ZMQ_POLLIN))
            break;
        psv_on_zap(s);
    }
    if (s->mon)
        psv_on_monitor(s);
    psv_check_heartbeats(s);
    if (s->conf.bound.expire_s || s->conf.bound.evict) {
        zps_shard_clock(s->tabs[0].sh, s_shard_ms(s));
        zps_shard_sweep(s->tabs[0].sh, PS_EXPIRE_BUDGET); /* expiry; keeps ages in range */
    }
    psv_checkpoint_tick(s);
    if (s->member) {
        psv_table_refresh(s);
        psv_join_poll(s);
    }
    psv_prom_publish(s, 0); /* metrics: at most every 100 ms */
}

int ps_server_run(ps_server_t *s, volatile sig_atomic_t *stop)
{
    zps_info(s->log, "serving on %s (rank %u of %u, %u table%s, table 0: %s%s; nonce %016llx)",
             s->endpoint, s->conf.rank, s->conf.nservers, s->conf.ntables,
             s->conf.ntables == 1 ? "" : "s", s->tabs[0].desc,
             s->tabs[0].o.accum == ZPS_ACCUM_UF16 ? ", n stored as uf16" : "",
             (unsigned long long)s->nonce);
    int rc = 0;
    uint32_t batch = s->conf.drain_batch ? s->conf.drain_batch : 256;
    while (!s->shutdown && !(stop && *stop)) {
        zmq_pollitem_t it[3] = {{s->sock, 0, ZMQ_POLLIN, 0}, {s->zap, 0, ZMQ_POLLIN, 0},
                                {s->mon, 0, ZMQ_POLLIN, 0}};
        zmq_pollitem_t *items = it;
        int nitems = 1;
        if (s->zap)
            nitems = 2;
        if (s->mon) {
            it[nitems] = (zmq_pollitem_t){s->mon, 0, ZMQ_POLLIN, 0};
            nitems++;
        }
        int n = zmq_poll(items, nitems, 50);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            zps_error(s->log, "poll failed: %s", zmq_strerror(errno));
            rc = ZPS_EIO;
            break;
        }
        s_maintenance(s);
        if (s->member && ps_member_state(s->member) == PS_MEMBER_RETIRED && s_retire_done(s)) {
            s->member_removed = 1;
            s->member_retired = 1;
            rc = 0;
            break;
        }
        if (s->member && (ps_member_state(s->member) == PS_MEMBER_OUT || s->join.stale)) {
            /* removed from the range table (declared failed): its data is
             * stale, it must not serve or save; a fresh start rejoins */
            zps_error(s->log, "removed from the job's range table: this server's copy is stale; "
                      "exiting (status 3) so that it can be started fresh and rejoin");
            s->member_removed = 1;
            rc = ZPS_ENOLEASE;
            break;
        }
        /* a bounded drain: maintenance comes round again soon whatever the load */
        for (uint32_t k = 0; k < batch && !s->shutdown && !(stop && *stop); k++) {
            zps_msg_t m;
            int r = zps_msg_recv(s->sock, 1, &m, ZMQ_DONTWAIT);
            s->st.bytes_in += m.wire_bytes;
            if (r == ZPS_EIO || r == ZPS_EINTR) {
                zps_msg_close(&m);
                break; /* EAGAIN: drained */
            }
            if (m.wire_bytes > s->conf.max_msg_bytes) {
                if (m.env && m.env->body_case == ZPS__ENVELOPE__BODY_PUSH) {
                    s->st.received_pushes++;
                    s->st.rejected_pushes++;
                }
                psv_reply_error(s, &m, ZPS_ETOOBIG, "message of %zu bytes is over the limit of "
                                "--max-msg-mb %llu: split it", m.wire_bytes,
                                (unsigned long long)(s->conf.max_msg_bytes >> 20));
            } else if (r == ZPS_EPROTO || r == ZPS_EVERSION) {
                psv_reply_error(s, &m, r, "%s", m.reason);
            } else {
                psv_handle(s, &m);
            }
            zps_msg_close(&m);
            s_trim_scratch(s);
            if ((k & 15) == 15 && zps_now_ms() - s->maint_ms >= 50)
                break;
        }
    }
    ps_server_stats_t st;
    ps_server_get_stats(s, &st);
    zps_info(s->log,
             "stopping: %llu keys stored (%.1f MB), %llu pushes received: %llu applied, %llu "
             "duplicates, %llu rejected; %llu acks (%llu keys), %llu pulls (%llu keys), %llu "
             "held pulls, %llu errors, %llu replies dropped, %llu maintenance passes (longest gap "
             "%llu ms)",
             (unsigned long long)st.keys_stored, (double)st.bytes_used / 1e6,
             (unsigned long long)st.received_pushes, (unsigned long long)st.applied_pushes,
             (unsigned long long)st.duplicate_pushes, (unsigned long long)st.rejected_pushes,
             (unsigned long long)st.pushes, (unsigned long long)st.keys_pushed,
             (unsigned long long)st.pulls, (unsigned long long)st.keys_pulled,
             (unsigned long long)st.held_pulls, (unsigned long long)st.errors,
             (unsigned long long)st.dropped_replies, (unsigned long long)st.maintenance_passes,
             (unsigned long long)st.maintenance_max_gap_ms);
    if (s->conf.admit.mode != ZPS_ADMIT_OFF) /* admission */
        zps_info(s->log, "admission: %llu keys admitted; %llu key updates in %llu pushes "
                 "dropped (key not admitted yet)", (unsigned long long)st.admitted_keys,
                 (unsigned long long)st.admission_rejected_keys,
                 (unsigned long long)st.admission_rejected_pushes);
    if (s->conf.bound.expire_s || s->conf.bound.evict)
        zps_info(s->log, "expiry and eviction: %llu keys expired, %llu evicted",
                 (unsigned long long)st.expired_keys, (unsigned long long)st.evicted_keys);
    for (uint32_t r = 0, shown = 0; r < s->nclients; r++) {
        const ps_ckpt_client_t *c = &s->clients[r];
        if (!c->nonce)
            continue;
        if (++shown > 64) {
            zps_info(s->log, "(more clients not shown; see STATS)");
            break;
        }
        /* the nonce's fingerprint, as STATS gives it: in plaintext mode the
         * nonce itself lets a process take the rank over */
        zps_info(s->log, "client rank %u (nonce fingerprint %08llx): %llu received, %llu applied, "
                 "%llu duplicates, %llu rejected, applied through seq %llu",
                 r, (unsigned long long)psv_nonce_fingerprint(c->nonce),
                 (unsigned long long)s->ranks[r].received,
                 (unsigned long long)s->ranks[r].applied, (unsigned long long)s->ranks[r].duplicates,
                 (unsigned long long)s->ranks[r].rejected, (unsigned long long)c->win.lwm);
    }
    if (s->member_retired) {
        zps_info(s->log, "removed from the job by request: its ranges live on other servers; "
                 "no checkpoint, no model saved here; exiting");
        return rc;
    }
    if (s->member_removed) {
        zps_warn(s->log, "removed from the range table: no final checkpoint, no model saved "
                 "(this server's copy is stale)");
        return rc;
    }
    if (s->conf.checkpoint_dir[0] && psv_checkpoint_inproc(s, "final") != 0)
        rc = rc ? rc : ZPS_EIO;
    if (s->conf.save_dir[0]) {
        char err[600];
        if (ps_server_save(s, s->conf.save_dir, err, sizeof err) != 0) {
            zps_error(s->log, "cannot save the model: %s", err);
            rc = rc ? rc : ZPS_EIO;
        }
    }
    return rc;
}
