/* zps_err: the error convention shared by every module.
 *
 * Functions return int: 0 on success, a negative ZPS_E* code on failure.
 * Codes live in a reserved range (-30999..-30900) so that a negated errno
 * (e.g. -ENOMEM) can pass through unchanged; zps_strerror() knows both. */
#ifndef ZPS_ERR_H
#define ZPS_ERR_H

enum {
    ZPS_OK        = 0,
    ZPS_EINVAL    = -30900, /* bad argument or configuration */
    ZPS_ENOMEM    = -30901, /* allocation failed */
    ZPS_EPROTO    = -30902, /* malformed message */
    ZPS_EVERSION  = -30903, /* peer speaks another protocol version */
    ZPS_ETIMEDOUT = -30904, /* peer did not answer in time */
    ZPS_ESERVER   = -30905, /* server answered with an error */
    ZPS_EIO       = -30906, /* transport or file I/O error */
    ZPS_EMISMATCH = -30907, /* peer configuration disagrees with ours */
    ZPS_EBUSY     = -30908, /* too many requests in flight */
    ZPS_ETOOBIG   = -30909, /* message or count over a limit */
    ZPS_EINTR     = -30910, /* interrupted by a signal */
    ZPS_EKEYCACHE = -30911, /* key list signature not in the server's cache */
    ZPS_EPERM     = -30912, /* not allowed: admin secret or identity missing or wrong */
    ZPS_ELIMIT    = -30913, /* a configured resource limit would be exceeded */
    ZPS_ENONFINITE = -30914, /* the update would make a weight or state non-finite */
    ZPS_ESEQ      = -30915, /* push sequence number invalid (0, or outside the window) */
    ZPS_ENOLEASE  = -30916, /* replicated job: the server holds no lease from the coordinator
                               (cut off, removed, or not started yet): retry elsewhere/later */
    ZPS_ELOST     = -30917, /* replicated job: every replica of a key range failed */
    ZPS_ESTALE    = -30918, /* replicated job: the server's range table is older than the
                               request's (it is about to learn the new one): retry soon */
};

/* Static text for a ZPS_E* code or a negated errno; never NULL. */
const char *zps_strerror(int code);

#endif
