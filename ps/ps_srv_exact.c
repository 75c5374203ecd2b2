/* ps_srv_exact: exactly once, progress records, checkpoints and restore
 * (part of ps_server, sharing ps_srv.h).
 *
 * Every push carries (worker rank, process nonce, sequence number); the
 * server keeps per rank the nonce and a dedup window (ps_dedup), applies
 * each sequence once in any order of arrival, records it only after the
 * push applied, and acknowledges a copy without applying it.  The records
 * are part of every checkpoint; acks carry durable_seq (the low-water mark
 * in the last written checkpoint).  After a restore, what a crash took from
 * this server is estimated from the acks clients report (psv_account_lost).
 * Checkpoints fork() (the child writes the copy-on-write image) except in
 * sanitizer builds, which write them in process (PS_CKPT_FORK). */
#include "ps_srv.h"

/* A sanitizer build writes checkpoints in process: a child forked from
 * this multithreaded process (ZeroMQ's I/O thread frees sent replies) can
 * deadlock in the sanitizer's allocator, whose locks GCC 12's libasan does
 * not take around fork(); glibc's malloc does. */
#if defined(__SANITIZE_ADDRESS__)
#define PS_CKPT_FORK 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PS_CKPT_FORK 0
#endif
#endif
#ifndef PS_CKPT_FORK
#define PS_CKPT_FORK 1
#endif

ps_ckpt_client_t *psv_client_rec(ps_server_t *s, uint32_t rank)
{
    if (rank >= PS_MAX_RANK)
        return NULL;
    if (rank >= s->nclients) {
        uint32_t n = rank + 1 > 2 * s->nclients ? rank + 1 : 2 * s->nclients;
        if (n > PS_MAX_RANK)
            n = PS_MAX_RANK;
        ps_ckpt_client_t *c = realloc(s->clients, n * sizeof *c);
        if (c)
            s->clients = c;
        ps_lost_t *l = realloc(s->lost, n * sizeof *l);
        if (l)
            s->lost = l;
        ps_rank_t *k = realloc(s->ranks, n * sizeof *k);
        if (k)
            s->ranks = k;
        if (!c || !l || !k)
            return NULL;
        memset(c + s->nclients, 0, (n - s->nclients) * sizeof *c);
        memset(l + s->nclients, 0, (n - s->nclients) * sizeof *l);
        memset(k + s->nclients, 0, (n - s->nclients) * sizeof *k);
        for (uint32_t i = s->nclients; i < n; i++)
            c[i].rank = i;
        s->nclients = n;
    }
    return &s->clients[rank];
}

/* Durable marks: at a checkpoint's fork, each client's applied low-water
 * mark is what that checkpoint will hold; once it is written, it is durable. */
static void s_durable_snapshot(ps_server_t *s)
{
    for (uint32_t r = 0; r < s->nclients; r++) {
        s->ranks[r].pend_nonce = s->clients[r].nonce;
        s->ranks[r].pend_seq = s->clients[r].win.lwm;
    }
}

static void s_durable_commit(ps_server_t *s)
{
    for (uint32_t r = 0; r < s->nclients; r++) {
        if (!s->ranks[r].pend_nonce)
            continue;
        s->ranks[r].durable_nonce = s->ranks[r].pend_nonce;
        s->ranks[r].durable_seq = s->ranks[r].pend_seq;
    }
}

/* A restored client record: its window must be consistent, else (a damaged
 * or older record) every seq up to the highest applied counts as applied. */
static void s_restored_client(ps_server_t *s, ps_ckpt_client_t *r)
{
    if (!ps_dedup_valid(&r->win) || r->win.hwm != r->last_seq) {
        zps_warn(s->log, "worker %u: exactly-once window in the checkpoint is inconsistent; "
                 "treating pushes up to %llu as applied", r->rank, (unsigned long long)r->last_seq);
        ps_dedup_init(&r->win);
        r->win.lwm = r->win.hwm = r->last_seq;
    }
    s->ranks[r->rank].durable_nonce = r->nonce;
    s->ranks[r->rank].durable_seq = r->win.lwm;
}

static void s_ckpt_info(const ps_server_t *s, ps_ckpt_info_t *info)
{
    memset(info, 0, sizeof *info);
    info->rank = s->conf.rank;
    info->nservers = s->conf.nservers;
    info->dim = s->tabs[0].dim;
    info->row_floats = zps_table_row_floats(s->tabs[0].t);
    /* the storage of n is not in the table's description (workers need not
     * know it), but rows of either kind must not be read as the other */
    snprintf(info->desc, sizeof info->desc, "%s", s->tabs[0].desc);
    size_t dl = strlen(info->desc);
    if (s->tabs[0].o.accum == ZPS_ACCUM_UF16 && dl + 12 <= sizeof info->desc)
        memcpy(info->desc + dl, ",accum=uf16", 12);
    info->job_id = s->job_id;
}

/* A replicated server's checkpoint carries the table it holds (format 4):
 * a restore needs it to know which ranges the rows are a copy of.  NULL
 * without replication or before the first table; the caller frees. */
static unsigned char *s_ckpt_ranges(const ps_server_t *s, size_t *len)
{
    *len = 0;
    if (!s->ranges || !s->ranges->version)
        return NULL;
    size_t need = zps_ranges_encoded_size(s->ranges);
    unsigned char *b = malloc(need);
    if (b)
        *len = zps_ranges_encode(s->ranges, b, need);
    return b;
}

/* Start a checkpoint in a forked child (copy-on-write snapshot). */
static void s_checkpoint_fork(ps_server_t *s)
{
    ps_ckpt_info_t info;
    s_ckpt_info(s, &info);
    info.counter = ++s->ckpt_counter;
    int64_t t0 = zps_now_ns();
    fflush(NULL);
    pid_t pid = fork();
    double pause_ms = (double)(zps_now_ns() - t0) / 1e6;
    if (pid < 0) {
        zps_error(s->log, "checkpoint %llu: fork failed: %s", (unsigned long long)info.counter,
                  strerror(errno));
        return;
    }
    if (pid == 0) {
        char err[1300];
        unsigned char *adm = NULL; /* shard state (format 3; none: format 2) */
        int rc = zps_shard_state_export(s->tabs[0].sh, &adm, &info.admit_in_len);
        info.admit_in = adm;
        info.ranges_in = s_ckpt_ranges(s, &info.ranges_in_len);
        if (rc || (s->ranges && s->ranges->version && !info.ranges_in)) {
            snprintf(err, sizeof err, "out of memory for the admission state or range table");
            rc = ZPS_ENOMEM;
        } else
            rc = ps_ckpt_write(s->conf.checkpoint_dir, &info, s->tabs[0].t, s->clients,
                               s->nclients, (int)s->conf.checkpoint_keep, err, sizeof err);
        if (rc)
            zps_error(s->log, "checkpoint %llu failed: %s", (unsigned long long)info.counter, err);
        _exit(rc ? 1 : 0);
    }
    s->ckpt_pid = pid;
    s_durable_snapshot(s);
    s->ckpt_started_ms = zps_now_ms();
    zps_info(s->log, "checkpoint %llu started: %zu keys, serving paused %.2f ms for the fork",
             (unsigned long long)info.counter, zps_table_size(s->tabs[0].t), pause_ms);
}

/* Reap a finished checkpoint child; wait for it if block. */
static void s_checkpoint_reap(ps_server_t *s, int block)
{
    if (s->ckpt_pid <= 0)
        return;
    int status;
    pid_t r = waitpid(s->ckpt_pid, &status, block ? 0 : WNOHANG);
    if (r == 0)
        return;
    if (r == s->ckpt_pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        s->st.checkpoints++;
        s_durable_commit(s);
        zps_info(s->log, "checkpoint %llu written in %lld ms", (unsigned long long)s->ckpt_counter,
                 (long long)(zps_now_ms() - s->ckpt_started_ms));
    } else {
        zps_error(s->log, "checkpoint %llu was not written (see above); the previous one is intact",
                  (unsigned long long)s->ckpt_counter);
    }
    s->ckpt_pid = 0;
    s->ckpt_last_ms = zps_now_ms();
}

/* A checkpoint written in process (serving pauses while it is written):
 * the final one at shutdown, and every one in sanitizer builds. */
int psv_checkpoint_inproc(ps_server_t *s, const char *what)
{
    s_checkpoint_reap(s, 1);
    ps_ckpt_info_t info;
    s_ckpt_info(s, &info);
    info.counter = ++s->ckpt_counter;
    char err[1300];
    int64_t t0 = zps_now_ms();
    unsigned char *adm = NULL; /* shard state (format 3; none: format 2) */
    int rc = zps_shard_state_export(s->tabs[0].sh, &adm, &info.admit_in_len);
    info.admit_in = adm;
    unsigned char *rt = s_ckpt_ranges(s, &info.ranges_in_len);
    info.ranges_in = rt;
    if (rc || (s->ranges && s->ranges->version && !rt)) {
        snprintf(err, sizeof err, "out of memory for the admission state or range table");
        rc = rc ? rc : ZPS_ENOMEM;
    } else {
        rc = ps_ckpt_write(s->conf.checkpoint_dir, &info, s->tabs[0].t, s->clients,
                           s->nclients, (int)s->conf.checkpoint_keep, err, sizeof err);
    }
    free(adm);
    free(rt);
    if (rc) {
        zps_error(s->log, "%s checkpoint %llu failed: %s", what, (unsigned long long)info.counter,
                  err);
    } else {
        s_durable_snapshot(s);
        s_durable_commit(s);
        s->st.checkpoints++;
        zps_info(s->log, "%s checkpoint %llu written: %zu keys in %lld ms", what,
                 (unsigned long long)info.counter, zps_table_size(s->tabs[0].t),
                 (long long)(zps_now_ms() - t0));
    }
    s->ckpt_last_ms = zps_now_ms();
    return rc;
}

void psv_checkpoint_tick(ps_server_t *s)
{
    if (!s->conf.checkpoint_dir[0] || !s->conf.checkpoint_every_ms)
        return;
    s_checkpoint_reap(s, 0);
    if (s->ckpt_pid != 0 || zps_now_ms() - s->ckpt_last_ms < (int64_t)s->conf.checkpoint_every_ms)
        return;
    if (PS_CKPT_FORK)
        s_checkpoint_fork(s);
    else
        psv_checkpoint_inproc(s, "periodic (in process: sanitizer build)");
}

/* --restore of a replicated server (--coordinator): the rows are a copy of
 * the ranges the checkpoint's table says it held, as of the checkpoint.
 * The coordinator decides which copy of each range the job goes on from
 * (ps_coord.h, "restore"); until then this process serves nothing.  The
 * clients' windows are of their numbering with the process that wrote the
 * checkpoint, which the restored table ends (a new incarnation: clients
 * number from 1 again), so only the progress records are kept. */
static int s_restore_replicated(ps_server_t *s, ps_ckpt_info_t *info, ps_ckpt_client_t *cl,
                                size_t ncl, int64_t t0, char *err, size_t errlen)
{
    zps_ranges_t *t = NULL;
    char why[200];
    int rc = ZPS_EPROTO;
    if (!info->ranges_out) {
        snprintf(err, errlen, "cannot restore: checkpoint %llu in %s has no range table (it was "
                 "written without --coordinator, or by a zps before 2026-12-06): a replicated "
                 "server restores checkpoints of a replicated job only",
                 (unsigned long long)info->counter, s->conf.checkpoint_dir);
        goto out;
    }
    if (!(t = malloc(sizeof *t))) {
        snprintf(err, errlen, "out of memory");
        rc = ZPS_ENOMEM;
        goto out;
    }
    if (zps_ranges_decode(t, info->ranges_out, info->ranges_out_len, why, sizeof why) != 0 ||
        s->conf.rank >= t->nservers) {
        snprintf(err, errlen, "cannot restore: checkpoint %llu in %s: its range table %s",
                 (unsigned long long)info->counter, s->conf.checkpoint_dir,
                 s->conf.rank >= t->nservers ? "has no slot for this rank" : why);
        goto out;
    }
    uint32_t prim = 0, held = zps_ranges_count(t, s->conf.rank, &prim);
    size_t progress = 0;
    for (size_t i = 0; i < ncl; i++) {
        ps_ckpt_client_t *r = psv_client_rec(s, cl[i].rank);
        if (!r || !cl[i].has_progress)
            continue;
        r->rank = cl[i].rank;
        r->has_progress = 1;
        r->progress_rows = cl[i].progress_rows;
        r->progress_epoch = cl[i].progress_epoch;
        progress++;
    }
    s->rst_table = info->ranges_out;
    s->rst_len = info->ranges_out_len;
    s->rst_ms = info->wall_ms ? info->wall_ms : 1;
    info->ranges_out = NULL;
    s->join.restored = 1;
    s->ckpt_counter = info->last_counter;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t age = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 - (int64_t)info->wall_ms;
    zps_info(s->log, "restored checkpoint %llu: %zu keys, a copy of the %u ranges it held (%u as "
             "primary) at table version %llu, written %.1f s ago; progress of %zu workers; in "
             "%lld ms (job %016llx).  The coordinator picks the newest copy of each range",
             (unsigned long long)info->counter, zps_table_size(s->tabs[0].t), held, prim,
             (unsigned long long)t->version, (double)age / 1000.0, progress,
             (long long)(zps_now_ms() - t0), (unsigned long long)s->job_id);
    rc = 0;
out:
    free(t);
    free(cl);
    free(info->ranges_out);
    info->ranges_out = NULL;
    return rc;
}

/* The job identity and --restore.  Without --restore: a new job id, and a
 * checkpoint directory holding checkpoints of this rank is refused.  With it:
 * the newest valid checkpoint is loaded into a new table that replaces
 * table 0 only once it is complete, and its job id is adopted. */
int psv_restore(ps_server_t *s, char *err, size_t errlen)
{
    if (!s->conf.restore) {
        s->job_id = ps_ckpt_new_job_id();
        if (!s->conf.checkpoint_dir[0])
            return 0;
        int rc = ps_ckpt_check_new_job(s->conf.checkpoint_dir, s->conf.rank, err, errlen);
        if (rc == 0)
            zps_info(s->log, "checkpoints of shard %u go to %s as job %016llx", s->conf.rank,
                     s->conf.checkpoint_dir, (unsigned long long)s->job_id);
        return rc;
    }
    ps_ckpt_info_t info;
    s_ckpt_info(s, &info);
    ps_ckpt_client_t *cl = NULL;
    zps_table_t *t = NULL;
    size_t ncl = 0;
    int64_t t0 = zps_now_ms();
    char why[1200];
    int rc = ps_ckpt_restore(s->conf.checkpoint_dir, &info, s->conf.capacity_hint, &t, &cl, &ncl,
                             s->log, why, sizeof why);
    if (rc == 1) {
        s->job_id = ps_ckpt_new_job_id();
        zps_warn(s->log, "--restore: no checkpoint of shard %u in %s; starting empty as job %016llx",
                 s->conf.rank, s->conf.checkpoint_dir, (unsigned long long)s->job_id);
        return 0;
    }
    if (rc) {
        snprintf(err, errlen, "cannot restore: %s", why);
        return rc;
    }
    /* shard state (format 3: admission, the job clock of expiry and
     * eviction), before the rows it describes: a bad block refuses the
     * restore */
    if (info.admit_out) {
        char why2[300];
        const int has_adm = info.admit_out_len >= 4 && !memcmp(info.admit_out, "ZAD1", 4);
        rc = zps_shard_state_import(s->tabs[0].sh, info.admit_out, info.admit_out_len, why2,
                                    sizeof why2);
        free(info.admit_out);
        info.admit_out = NULL;
        if (rc) {
            snprintf(err, errlen, "cannot restore: checkpoint %llu: %s",
                     (unsigned long long)info.counter, why2);
            zps_table_destroy(&t);
            free(cl);
            return rc;
        }
        zps_admit_stats_t ast;
        zps_shard_admit_stats(s->tabs[0].sh, &ast);
        if (has_adm && s->conf.admit.mode == ZPS_ADMIT_OFF)
            zps_warn(s->log, "the checkpoint has admission state, but this server runs without "
                     "--admit: ignored (every key pushed is stored)");
        else if (has_adm)
            zps_info(s->log, "restored admission state: %llu keys admitted, %llu key updates "
                     "dropped, sketch %.1f MiB", (unsigned long long)ast.admitted_keys,
                     (unsigned long long)ast.rejected_keys, (double)ast.sketch_bytes / 1048576.0);
        zps_bound_stats_t bst;
        zps_shard_bound_stats(s->tabs[0].sh, &bst);
        if (s->conf.bound.expire_s || s->conf.bound.evict)
            zps_info(s->log, "expiry/eviction: the clock is at %llu s after the restore "
                     "(%llu rows expired, %llu evicted so far)", (unsigned long long)bst.now,
                     (unsigned long long)bst.expired,
                     (unsigned long long)bst.evicted);
    }
    if (zps_shard_adopt(s->tabs[0].sh, &t) != 0) { /* ps_ckpt_restore checked the row size */
        snprintf(err, errlen, "cannot restore: the checkpoint's rows do not fit table 0");
        zps_table_destroy(&t);
        free(cl);
        return ZPS_EINVAL;
    }
    s->tabs[0].t = zps_shard_table(s->tabs[0].sh);
    s->job_id = info.job_id;
    if (s->conf.coordinator[0])
        return s_restore_replicated(s, &info, cl, ncl, t0, err, errlen);
    free(info.ranges_out);
    uint64_t pushes = 0;
    for (size_t i = 0; i < ncl; i++) {
        ps_ckpt_client_t *r = psv_client_rec(s, cl[i].rank);
        if (r) {
            *r = cl[i];
            s_restored_client(s, r);
            s->lost[cl[i].rank].ckpt_applied = cl[i].applied;
            s->lost[cl[i].rank].ckpt_seq = cl[i].last_seq;
            s->lost[cl[i].rank].active = 1;
        }
        pushes += cl[i].applied;
    }
    free(cl);
    s->ckpt_counter = info.last_counter;   /* never reuse a name in the directory */
    s->restored = 1;
    s->st.restored_pushes = pushes;
    zps_info(s->log, "restored checkpoint %llu: %zu keys, %llu pushes from %zu workers, in %lld ms "
             "(job %016llx)",
             (unsigned long long)info.counter, zps_table_size(s->tabs[0].t),
             (unsigned long long)pushes, ncl, (long long)(zps_now_ms() - t0),
             (unsigned long long)s->job_id);
    return 0;
}

/* Lost pushes after a restore: the client says how many acks it had from
 * this server when it sent this push; minus the acks this server has sent
 * it since the restore, that is a lower bound of the acks it had before
 * the crash, exact once the client has caught up with our acks (it waits
 * for them every --max-delay pushes).  What the checkpoint does not contain
 * of those was lost.  Called for every push that is acknowledged; dup: it
 * had been applied before (in the checkpoint or since). */
void psv_account_lost(ps_server_t *s, uint32_t rank, const Zps__Push *req, int dup)
{
    ps_lost_t *l = &s->lost[rank];
    if (!l->active)
        return;
    if (req->acked > l->acks_sent && req->acked - l->acks_sent > l->pre_acks)
        l->pre_acks = req->acked - l->acks_sent;
    /* a resent push the checkpoint holds: its old ack never arrived */
    if (dup && req->seq <= l->ckpt_seq && req->seq > l->resent_seq) {
        l->ckpt_resent++;
        l->resent_seq = req->seq;
    }
    /* old acks = acks of checkpointed pushes that arrived + acks of lost ones */
    uint64_t got = l->ckpt_applied - (l->ckpt_resent < l->ckpt_applied ? l->ckpt_resent
                                                                      : l->ckpt_applied);
    uint64_t now = l->pre_acks > got ? l->pre_acks - got : 0;
    if (now != l->lost) {
        s->st.lost_pushes += now - l->lost;
        l->lost = now;
        zps_warn(s->log, "worker %u: %llu acknowledged pushes are not in the restored "
                 "checkpoint (applied after it, before the crash): the client resends them",
                 rank, (unsigned long long)now);
    }
    if (req->seq > l->acked_seq) {
        l->acks_sent++; /* answered now; counted once per push, as the client does */
        l->acked_seq = req->seq;
    }
}

void psv_push_rejected(ps_server_t *s, ps_rank_t *rk)
{
    s->st.rejected_pushes++;
    if (rk)
        rk->rejected++;
}
