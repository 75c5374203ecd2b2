/* ps_srv_auth: who may speak to the server (part of ps_server, sharing
 * ps_srv.h).
 *
 * The admin token file and the CURVE allow directory are read at start.
 * Under CURVE the ZAP handler (RFC 27) gives each allowed key an identity
 * (worker-R, admin, ro:NAME), read per message from the User-Id.  In both
 * modes a rank is bound to one connection (psv_speaks_for): pushes, clocks
 * and heartbeats count only from it. */
#include "ps_srv.h"

/* The admin token: one line of 32..256 hex characters in a regular file
 * owned by us that group and others cannot access. */
int psv_read_token(const char *path, char *out, size_t *outlen, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "--admin-token-file %s: cannot open: %s", path, strerror(errno));
        return ZPS_EIO;
    }
    struct stat st;
    char buf[PS_TOKEN_MAX + 64];
    ssize_t n = -1;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "--admin-token-file %s: %s", path, strerror(errno));
        rc = ZPS_EIO;
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "--admin-token-file %s is not a regular file", path);
        rc = ZPS_EINVAL;
    } else if (st.st_uid != geteuid()) {
        snprintf(err, errlen, "--admin-token-file %s is not owned by this user (uid %u)", path,
                 (unsigned)geteuid());
        rc = ZPS_EPERM;
    } else if (st.st_mode & 077) {
        snprintf(err, errlen, "--admin-token-file %s is accessible to group or others (mode %03o): "
                 "chmod 600 it", path, (unsigned)(st.st_mode & 0777));
        rc = ZPS_EPERM;
    } else if ((n = read(fd, buf, sizeof buf - 1)) < 0) {
        snprintf(err, errlen, "--admin-token-file %s: cannot read: %s", path, strerror(errno));
        rc = ZPS_EIO;
    }
    close(fd);
    if (rc)
        return rc;
    size_t len = 0;
    while (len < (size_t)n && buf[len] != '\n' && buf[len] != '\r')
        len++;
    int hex = 1;
    for (size_t i = 0; i < len; i++)
        hex &= (buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f') ||
               (buf[i] >= 'A' && buf[i] <= 'F');
    if (!hex || len < 32 || len > PS_TOKEN_MAX) {
        snprintf(err, errlen, "--admin-token-file %s: the first line must be 32 to %d hex "
                 "characters (the token)", path, PS_TOKEN_MAX);
        return ZPS_EINVAL;
    }
    memcpy(out, buf, len);
    out[len] = 0;
    *outlen = len;
    return 0;
}

/* Constant-time comparison of a received token with ours (no early exit;
 * only the lengths' equality shows in the time). */
int psv_token_ok(const char *ours, size_t olen, const char *got)
{
    size_t glen = got ? strnlen(got, PS_TOKEN_MAX + 1) : 0;
    volatile unsigned char d = (unsigned char)(olen != glen || olen == 0);
    for (size_t i = 0; i < olen; i++)
        d |= (unsigned char)(ours[i] ^ (i < glen ? got[i] : 0));
    return d == 0;
}

/* The allow directory: every *.pub, with the identity its name gives:
 * admin.pub -> "admin", worker-R.pub -> "worker-R", NAME.pub -> "ro:NAME". */
int psv_read_allow_dir(ps_server_t *s, const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot read --allow-dir %s: %s", dir, strerror(errno));
        return ZPS_EIO;
    }
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".pub"))
            continue;
        char path[1300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        zps_curve_pair_t p;
        if ((rc = zps_curve_read(path, &p, err, errlen)) != 0)
            break;
        if (s->nallowed == cap) {
            cap = cap ? 2 * cap : 8;
            ps_key_t *k = realloc(s->allowed, cap * sizeof *k);
            if (!k) {
                snprintf(err, errlen, "out of memory");
                rc = ZPS_ENOMEM;
                break;
            }
            s->allowed = k;
        }
        ps_key_t *k = &s->allowed[s->nallowed];
        memcpy(k->z85, p.public_z85, sizeof k->z85);
        unsigned r = 0;
        int used = 0;
        if (!strcmp(e->d_name, "admin.pub")) {
            snprintf(k->user, sizeof k->user, "admin");
        } else if (sscanf(e->d_name, "worker-%u.pub%n", &r, &used) == 1 && used == (int)l &&
                   e->d_name[7] >= '0' && e->d_name[7] <= '9' && r < PS_MAX_RANK) {
            snprintf(k->user, sizeof k->user, "worker-%u", r);
        } else {
            char esc[ZPS_LOG_WIRE_BUF];
            zps_log_escape(e->d_name, l - 4, esc, sizeof esc, 24);
            snprintf(k->user, sizeof k->user, "ro:%.40s", esc);
        }
        for (size_t i = 0; i < s->nallowed && !rc; i++)
            if (!strcmp(s->allowed[i].z85, k->z85)) {
                snprintf(err, errlen, "--allow-dir %s: %s holds the same key as another file "
                         "(identity %s); one key, one identity", dir, e->d_name,
                         s->allowed[i].user);
                rc = ZPS_EINVAL;
            }
        if (!rc)
            s->nallowed++;
    }
    closedir(d);
    if (!rc && s->nallowed == 0) {
        snprintf(err, errlen, "--allow-dir %s has no *.pub key: no client could connect", dir);
        rc = ZPS_EINVAL;
    }
    return rc;
}

/* Answer one ZAP request: a CURVE client gets in iff its public key is in
 * the allow directory, and speaks as the identity its file name gives
 * (User-Id, read per message by psv_identity).  Refused peer addresses are
 * logged once each, and at most 20 lines per 10 s in all. */
void psv_on_zap(ps_server_t *s)
{
    zmq_msg_t part[8];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s->zap, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        if (n < 8)
            part[n++] = m;
        else
            zmq_msg_close(&m);
    }
    if (n < 6) {
        /* a REP socket must answer before it can receive again */
        if (n >= 2) {
            zmq_send(s->zap, "1.0", 3, ZMQ_SNDMORE);
            zmq_send(s->zap, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]), ZMQ_SNDMORE);
            zmq_send(s->zap, "500", 3, ZMQ_SNDMORE);
            zmq_send(s->zap, "bad request", 11, ZMQ_SNDMORE);
            zmq_send(s->zap, "", 0, ZMQ_SNDMORE);
            zmq_send(s->zap, "", 0, 0);
        }
        goto out;
    }
    char mech[16] = "", addr[64] = "?", key[ZPS_Z85_LEN + 1] = "";
    zps_log_escape(zmq_msg_data(&part[5]), zmq_msg_size(&part[5]), mech, sizeof mech, 8);
    zps_log_escape(zmq_msg_data(&part[3]), zmq_msg_size(&part[3]), addr, sizeof addr, 15);
    const ps_key_t *who = NULL;
    if (!strcmp(mech, "CURVE") && n >= 7 && zmq_msg_size(&part[6]) == 32) {
        zmq_z85_encode(key, zmq_msg_data(&part[6]), 32);
        for (size_t i = 0; i < s->nallowed && !who; i++)
            if (!strcmp(s->allowed[i].z85, key))
                who = &s->allowed[i];
    }
    if (!who) {
        int seen = 0;
        for (size_t i = 0; i < s->nrejected && !seen; i++)
            seen = !strcmp(s->rejected[i], addr);
        if (!seen) {
            if (s->nrejected < 64)
                snprintf(s->rejected[s->nrejected++], 64, "%s", addr);
            zps_log_burst(s->log, ZPS_LOG_WARN, LC_ZAP, 20, 10000,
                          "refused a connection from %s: %s key %s is not in %s", addr, mech,
                          key[0] ? key : "(none)", s->conf.allow_dir);
        }
    }
    /* reply: version, request id, status code, status text, user id, metadata */
    zmq_send(s->zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(s->zap, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]), ZMQ_SNDMORE);
    zmq_send(s->zap, who ? "200" : "400", 3, ZMQ_SNDMORE);
    zmq_send(s->zap, who ? "OK" : "key not allowed", who ? 2 : 15, ZMQ_SNDMORE);
    zmq_send(s->zap, who ? who->user : "", who ? strlen(who->user) : 0, ZMQ_SNDMORE);
    zmq_send(s->zap, "", 0, 0);
out:
    for (int i = 0; i < n; i++)
        zmq_msg_close(&part[i]);
}

/* May m's connection speak as the rank it claims?  Plaintext and admin:
 * yes; a worker key: only as its own rank. */
static int s_may_claim(const ps_server_t *s, const zps_msg_t *m)
{
    if (!s->curve || !strcmp(m->user, "admin"))
        return 1;
    unsigned r = 0;
    int used = 0;
    return sscanf(m->user, "worker-%u%n", &r, &used) == 1 && m->user[used] == 0 &&
           r == m->env->rank && m->env->role == ZPS__ROLE__ROLE_WORKER;
}

/* Does m's connection speak for its rank?  A rank is bound to one
 * connection: the first that speaks for it (push, clock, heartbeat, or any
 * worker message), and again whoever says HELLO as that worker (a
 * restarted worker: the later process wins), or pushes with the nonce of
 * the process that bound it (the same process, reconnected).  A binding
 * ends when its connection closes.  nonce: the message's client nonce (0
 * if it has none); hello: m is a worker's HELLO. */
int psv_speaks_for(ps_server_t *s, zps_msg_t *m, uint64_t nonce, int hello)
{
    uint32_t rank = m->env->rank;
    if (rank >= PS_MAX_RANK || !s_may_claim(s, m) || !psv_client_rec(s, rank))
        return 0;
    ps_rank_t *r = &s->ranks[rank];
    uint64_t conn = psv_conn_key(s, m);
    if (!conn)
        return 0;
    int64_t now = zps_now_ms();
    if (r->conn == conn) {
        if (nonce)
            r->bound_nonce = nonce;
        r->last_ms = now;
        return 1;
    }
    if (r->conn) {
        /* Another connection claims a bound rank.  Only a HELLO, or a push
         * with the nonce of the process that bound it (the same process,
         * reconnected), may take it over, and only once the bound
         * connection is gone (the kernel closed a dead process's socket:
         * read pending disconnects first) or silent for the heartbeat
         * timeout (its host vanished).  A live connection's rank cannot be
         * taken, whatever the claimant knows. */
        if (!hello && !(nonce && nonce == r->bound_nonce))
            return 0;
        psv_on_monitor(s);
        if (r->conn && now - r->last_ms <= (int64_t)s->conf.heartbeat_timeout_ms) {
            zps_log_limited(s->log, LC_PERM, 1000, "hello as rank %u from %s refused: the rank "
                            "is bound to a live connection", rank, m->peer);
            return 0;
        }
    }
    if (r->conn)
        zps_log_burst(s->log, ZPS_LOG_INFO, LC_BIND, 20, 10000,
                      "rank %u now speaks from %s (%s)", rank, m->peer,
                      hello ? "a new hello" : "same process, new connection");
    r->conn = conn;
    r->bound_nonce = nonce;
    r->last_ms = now;
    return 1;
}
