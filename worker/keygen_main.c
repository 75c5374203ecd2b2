/* zps-keygen: write a CURVE key pair for zps servers and workers. */
#include <stdio.h>
#include <string.h>

#include "zps_curve.h"

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--version")) {
        printf("zps-keygen %s\n", ZPS_VERSION);
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(argc == 2 && !strcmp(argv[1], "--help") ? stdout : stderr,
                "usage: zps-keygen NAME\n"
                "  writes NAME.key (public and secret key, mode 0600) and NAME.pub (public key)\n"
                "  servers: --curve-secret server.key --allow-dir DIR (DIR holds the workers' .pub)\n"
                "  workers: --curve-secret worker.key --server-public server.pub\n");
        return argc == 2 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    char err[1200];
    if (zps_curve_keygen(argv[1], err, sizeof err) != 0) {
        fprintf(stderr, "zps-keygen: %s\n", err);
        return 1;
    }
    printf("wrote %s.key (secret, mode 0600) and %s.pub\n", argv[1], argv[1]);
    return 0;
}
