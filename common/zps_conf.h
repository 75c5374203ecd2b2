/* zps_conf: the job's training options, shared by zps-server and zps-worker.
 *
 * The launcher hands the same training options to every server and worker.
 * Both parse them with zps_conf_parse into one struct; the server takes its
 * table settings from it (zps_conf_table) and a worker computes the same
 * table description and refuses to run if the servers describe their table
 * differently (so a worker started with other options gets a clear error
 * instead of silently training a different model).
 *
 * Options that only one side uses are accepted by both, so one option list
 * works for the whole job; options unknown to both are an error. */
#ifndef ZPS_CONF_H
#define ZPS_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "zps_optim.h"

#define ZPS_MAX_PATHS 64
#define ZPS_MAX_LAYERS 8
#define ZPS_MLP_CHUNK 64 /* floats per key for dense (mlp) weights */
#define ZPS_NORM_LR 0.07f /* default step of --optimizer norm (docs/bench-quality.md) */
#define ZPS_MLP_ADAM_LR 0.0005f /* default --lr of adam for the mlp (docs/bench-mlp.md) */
#define ZPS_MLP_EPOCHS 30u      /* default --epochs of the mlp (docs/bench-mlp.md) */
#define ZPS_AUTO_MAX_EPOCHS 30u /* --epochs auto: at most this many passes */

typedef enum { ZPS_MODEL_LR = 0, ZPS_MODEL_FM, ZPS_MODEL_MLP } zps_model_kind_t;
typedef enum { ZPS_FMT_AUTO = 0, ZPS_FMT_LIBSVM, ZPS_FMT_CRITEO, ZPS_FMT_IDX } zps_format_t;
typedef enum { ZPS_CONS_ASYNC = 0, ZPS_CONS_SSP, ZPS_CONS_BSP } zps_consistency_t;

typedef struct {
    /* model */
    zps_model_kind_t model;
    uint32_t fm_dim;                 /* --dim k: fm embedding size [8] */
    uint32_t layers[ZPS_MAX_LAYERS]; /* --layers 784,128,10 */
    uint32_t nlayers;
    float init_scale;                /* --init-scale: fm embeddings [norm 0.01, else 0.1];
                                        mlp: multiplies the init limits [1] */
    uint64_t seed;                   /* --seed [1] */
    uint32_t hash_bits;              /* --hash-bits: 0 = keep 64-bit ids */
    /* optimizer */
    zps_opt_kind_t optimizer;         /* --optimizer [norm for lr and fm, adam for mlp] */
    int optimizer_set;
    float lr, l1, l2, beta, eps;     /* lr<0: optimizer default */
    /* data */
    const char *train[ZPS_MAX_PATHS];
    uint32_t ntrain;
    const char *test;
    zps_format_t format;
    const char *cache_dir;           /* NULL: next to the input */
    int no_cache;
    int skip_bad_lines;
    uint32_t shuffle_buffer;         /* rows [200000]; 0 = contiguous shard, file order */
    /* training */
    uint32_t epochs;                 /* passes over the data; 0 = auto [lr/fm auto, mlp 30]: up to
                                        ZPS_AUTO_MAX_EPOCHS, stopped by a holdout
                                        (worker/wk_train.h) */
    int epochs_set;                  /* --epochs given (else mlp: ZPS_MLP_EPOCHS) */
    double max_train_seconds;        /* stop after the pass that reaches it (0: none) */
    uint32_t batch;                  /* [500 sparse, 100 mlp] */
    uint32_t max_delay;              /* unacknowledged pushes in flight [4] */
    zps_consistency_t consistency;
    uint32_t staleness;              /* ssp:N */
    uint32_t clock_every;            /* batches per clock [1] */
    double heartbeat_timeout;        /* seconds without a message before a worker leaves the clock [30] */
    /* compression (--compress a,b,...) */
    const char *compress_spec;
    uint32_t push_codec;             /* 0 f32, 1 fp16, 2 int8 */
    uint32_t pull_codec;             /* pull-fp16 / pull-int8 */
    int key_cache;                   /* keycache */
    int sparse_mode;                 /* 0 none, 1 topk, 2 threshold */
    float sparse_ratio, sparse_threshold, sparse_momentum;
    const char *compress_audit;      /* worker writes per-key raw/residual sums here (tests) */
    /* testing and benchmark knobs */
    int32_t slow_worker;             /* rank to slow down, -1 none */
    float slow_factor;               /* that worker takes this many times as long per batch */
    double progress_every;           /* seconds [5] */
    double connect_timeout;          /* seconds to reach every server [30] */
    double request_timeout;          /* seconds a request may wait [60] */
    const char *test_predictions;    /* worker 0 writes test probabilities here */
    /* job layout (set by the launcher) */
    /* fault tolerance */
    const char *checkpoint_dir;      /* servers: checkpoints go here */
    double checkpoint_every;         /* seconds between checkpoints [60] */
    uint32_t checkpoint_keep;        /* checkpoints kept per server [3] */
    double server_timeout;           /* workers: give up on a silent server after [120] s */
    double max_retained_mb;          /* workers: pushes held until durable, at most [256] MB;
                                        0 = keep a push only until it is acknowledged */
    const char *save_model;          /* --save-model DIR (servers write it; workers check
                                        its parent up front) */
    /* security (ZeroMQ CURVE) */
    const char *curve_secret;        /* this process's NAME.key */
    const char *allow_dir;           /* servers: *.pub of the clients allowed in */
    const char *server_public;       /* workers: the servers' NAME.pub */
    const char *servers;             /* comma-separated endpoints */
    const char *coordinator;         /* --coordinator EP: a replicated job (zps-coord) */
    int local;                       /* --local: no servers, an in-process store */
    uint32_t rank, num_workers;
} zps_conf_t;

void zps_conf_defaults(zps_conf_t *c);

/* The training options as getopt_long entries (zero-terminated), every
 * one with val ZPS_CONF_OPT: a main joins them to its own options
 * (zps_options_join), runs zps_getopt, and hands each ZPS_CONF_OPT match to
 * zps_conf_set by name.  The table and zps_conf_set are the only place a
 * training option is parsed. */
#define ZPS_CONF_OPT 0x7a00
struct option;
const struct option *zps_conf_options(void);

/* 1 if the training option NAME (without "--") takes a value, 0 if it is a
 * flag, -1 if it is not a training option. */
int zps_conf_option_arg(const char *name);

/* Applies the training option NAME (without "--") with value (NULL for a
 * flag; kept by pointer, as argv is).  Returns 1, 0 if NAME is not a
 * training option, or ZPS_EINVAL with a message naming the option in err
 * (a bad value, "expected a base-10 integer", "out of range"; a missing
 * value; a value given to a flag). */
int zps_conf_set(zps_conf_t *c, const char *name, const char *value, char *err, size_t errlen);

/* Checks and fills in model-dependent defaults; ZPS_EINVAL + err. */
int zps_conf_finish(zps_conf_t *c, char *err, size_t errlen);

/* Input checks before any work: every --train path exists and is readable
 * (globs are expanded by the reader, which names a pattern matching
 * nothing); with test: --test too; --cache-dir (unless --no-cache) is a
 * writable directory or can be created in one; the directories that
 * --save-model, --test-predictions (with test) and --compress-audit will be
 * written in exist and are writable.  ZPS_EINVAL with err naming the option
 * and the path. */
int zps_conf_check_paths(const zps_conf_t *c, int test, char *err, size_t errlen);

/* Canonical description of the job settings servers and workers must
 * agree on besides the table ("consistency=ssp:4,workers=3"). */
int zps_conf_job_desc(const zps_conf_t *c, char *buf, size_t len);

/* The server table this job needs (table 0). */
void zps_conf_table(const zps_conf_t *c, zps_optim_conf_t *out);

/* Usage text of the training options. */
const char *zps_conf_usage(void);

const char *zps_model_name(zps_model_kind_t m);

/* Key of the model's bias (lr, fm): reserved, never a feature id. */
#define ZPS_BIAS_KEY UINT64_MAX

#endif
