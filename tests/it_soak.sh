#!/bin/sh
# A job launched over a hostfile (2 servers x 2 workers, the launcher's remote
# path through a local stand-in shell) trains while bin/zps-hostile runs every
# attack in a loop against each server: the shortened form of
# scripts/soak-hostile (SOAK_SECONDS, default 15; the full soak is an hour,
# see docs/security.md).  Passes only if the job succeeds, no attack is ever
# judged VULNERABLE, the model's quality is unchanged and server memory flat.
# The job trains SOAK_AFTER (30) seconds past the attacks' end, the full
# soak's 60 halved: enough for the last round (about 7 s) on a loaded machine.
. "$(dirname "$0")/lib.sh"
"$(pwd)/scripts/soak-hostile" --duration "${SOAK_SECONDS:-15}" --after "${SOAK_AFTER:-30}" --out "$TMP/soak" ||
    fail "soak failed"
echo "it_soak: ok"
