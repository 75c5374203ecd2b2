/* wk_cli_local: the client's --local mode (see wk_cli.h).
 *
 * DESIGN
 * `zps-worker --local` trains without servers: the handle holds one
 * zps_shard (the rows and optimizer a server would hold; the same code the
 * server runs) and a pull or push is applied to it in the call, so its
 * ticket is complete when wkc_start returns (wk_client_wait then only
 * releases it).  A push the shard refuses (non-finite, out of memory) is
 * refused whole and fails this and every later call, as a server's error
 * reply does.  The ring has one slot per ticket as with servers, with
 * per-server arrays for one (unused); the handle has no sockets. */
#include "wk_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zps_err.h"
#include "zps_optim.h"

int wkc_local_op(wk_client_t *c, int kind, const uint64_t *keys, const float *grads, size_t n,
                 float *out, float *sent)
{
    if (kind == RQ_PULL) {
        zps_shard_pull(c->lshard, keys, n, out);
        return 0;
    }
    zps_shard_push_t pr;
    int rc = zps_shard_push_begin(c->lshard, keys, n, grads, c->lr_scale, 0.0f, &pr);
    if (!rc)
        rc = zps_shard_push_commit(c->lshard);
    if (rc == ZPS_ENONFINITE)
        wkc_seterr(c, "the update of key %llu would make a weight or optimizer state non-finite "
                   "(gradient too large?): push rejected, nothing applied",
                   (unsigned long long)keys[pr.bad]);
    else if (rc)
        wkc_seterr(c, "out of memory for a push of %zu keys: nothing applied", n);
    if (rc) {
        c->sticky = rc;
        return rc;
    }
    if (sent)
        memcpy(sent, grads, n * zps_optim_push_floats(zps_shard_optim(c->lshard)) * sizeof(float));
    return 0;
}

void wkc_local_stats(const wk_client_t *c, wk_server_stats_t *out)
{
    memset(out, 0, sizeof *out);
    out->keys_stored = zps_table_size(zps_shard_table(c->lshard));
    out->bytes_used = zps_table_bytes(zps_shard_table(c->lshard));
}

wk_client_t *wkc_local_new(const wk_client_conf_t *conf, char *err, size_t errlen)
{
    wk_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->lr_scale = 1.0f;
    c->conf = *conf;
    c->conf.nservers = 0;
    snprintf(c->ljob, sizeof c->ljob, "%s", conf->local_job ? conf->local_job : "");
    c->next_id = 1;
    c->lshard = zps_shard_new(conf->local, 1 << 20);
    if (wkc_ring_new(c, 256, 1) != 0 || !c->lshard) {
        snprintf(err, errlen, "out of memory");
        wk_client_destroy(&c);
        return NULL;
    }
    c->ntables = 1;
    const zps_optim_conf_t *lo = zps_shard_optim(c->lshard);
    c->tables[0].dim = lo->dim;
    snprintf(c->tables[0].optimizer, sizeof c->tables[0].optimizer, "%s",
             zps_optim_kind_name(lo->kind));
    zps_optim_describe(lo, c->tables[0].options, sizeof c->tables[0].options);
    return c;
}
