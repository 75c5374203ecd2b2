#include "zps_err.h"

#include <string.h>

const char *zps_strerror(int code)
{
    switch (code) {
    case ZPS_OK: return "success";
    case ZPS_EINVAL: return "invalid argument";
    case ZPS_ENOMEM: return "out of memory";
    case ZPS_EPROTO: return "malformed message";
    case ZPS_EVERSION: return "protocol version mismatch";
    case ZPS_ETIMEDOUT: return "timed out";
    case ZPS_ESERVER: return "server error";
    case ZPS_EIO: return "I/O error";
    case ZPS_EMISMATCH: return "configuration mismatch";
    case ZPS_EBUSY: return "too many requests in flight";
    case ZPS_ETOOBIG: return "over a size limit";
    case ZPS_EINTR: return "interrupted";
    case ZPS_EKEYCACHE: return "key list not cached";
    case ZPS_EPERM: return "not allowed (admin secret or identity)";
    case ZPS_ELIMIT: return "resource limit exceeded";
    case ZPS_ENONFINITE: return "update would make a weight non-finite";
    case ZPS_ESEQ: return "invalid push sequence number";
    case ZPS_ENOLEASE: return "server holds no lease from the coordinator";
    case ZPS_ELOST: return "every replica of a key range failed";
    case ZPS_ESTALE: return "server's range table is older than the request's";
    default: break;
    }
    if (code < 0 && code > -4096)
        return strerror(-code);
    return "unknown error";
}
