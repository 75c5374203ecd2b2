/* zps-keygen: write a CURVE key pair for zps servers and workers.
 * The secret file is created new with mode 0600 (zps_curve_keygen); before
 * saying so, this checks the file that is now under the name. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
                "  as new files; refuses a NAME.key or NAME.pub that is a symbolic link or\n"
                "  belongs to another user (a file of yours is replaced)\n"
                "  servers: --curve-secret server.key --allow-dir DIR (DIR holds the workers' .pub)\n"
                "  workers: --curve-secret worker.key --server-public server.pub\n");
        return argc == 2 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    char err[1200];
    if (zps_curve_keygen(argv[1], err, sizeof err) != 0) {
        fprintf(stderr, "zps-keygen: %s\n", err);
        return 1;
    }
    char kpath[1100];
    snprintf(kpath, sizeof kpath, "%s.key", argv[1]);
    struct stat st;
    memset(&st, 0, sizeof st);
    if (lstat(kpath, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 07777) != 0600 ||
        st.st_uid != geteuid()) {
        fprintf(stderr, "zps-keygen: %s is not a mode 0600 file of this user after writing it "
                        "(mode %04o, owner %u): do not use it\n",
                kpath, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
        return 1;
    }
    printf("wrote %s.key (secret, mode 0600) and %s.pub\n", argv[1], argv[1]);
    return 0;
}
