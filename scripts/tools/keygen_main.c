/* zps-keygen: write a CURVE key pair for zps servers and workers.
 * The secret file is created new with mode 0600 (zps_curve_keygen); before
 * saying so, this checks the file that is now under the name.  Options
 * through zps_getopt (--help, --version); one argument, NAME. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zps_args.h"
#include "zps_curve.h"

static void s_usage(FILE *f)
{
    fprintf(f, "usage: zps-keygen NAME\n"
               "  writes NAME.key (public and secret key, mode 0600) and NAME.pub (public key)\n"
               "  as new files; refuses a NAME.key or NAME.pub that is a symbolic link or\n"
               "  belongs to another user (a file of yours is replaced)\n"
               "  servers: --curve-secret server.key --allow-dir DIR (DIR holds the workers' .pub)\n"
               "  workers: --curve-secret worker.key --server-public server.pub\n");
}

int main(int argc, char **argv)
{
    enum { O_HELP = 1, O_VERSION };
    static const struct option opts[] = {{"help", no_argument, 0, O_HELP},
                                         {"version", no_argument, 0, O_VERSION},
                                         {0, 0, 0, 0}};
    char oerr[300];
    int c, li;
    while ((c = zps_getopt(argc, argv, NULL, opts, &li, oerr, sizeof oerr)) != -1) {
        if (c == O_HELP) {
            s_usage(stdout);
            return 0;
        }
        if (c == O_VERSION) {
            printf("zps-keygen %s\n", ZPS_VERSION);
            return 0;
        }
        fprintf(stderr, "zps-keygen: %s\n", oerr);
        s_usage(stderr);
        return 2;
    }
    /* exactly one NAME */
    if (optind + 1 != argc) {
        s_usage(stderr);
        return 2;
    }
    const char *name = argv[optind];
    char err[1200];
    if (zps_curve_keygen(name, err, sizeof err) != 0) {
        fprintf(stderr, "zps-keygen: %s\n", err);
        return 1;
    }
    char kpath[1100];
    snprintf(kpath, sizeof kpath, "%s.key", name);
    struct stat st;
    memset(&st, 0, sizeof st);
    if (lstat(kpath, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 07777) != 0600 ||
        st.st_uid != geteuid()) {
        fprintf(stderr, "zps-keygen: %s is not a mode 0600 file of this user after writing it "
                        "(mode %04o, owner %u): do not use it\n",
                kpath, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
        return 1;
    }
    printf("wrote %s.key (secret, mode 0600) and %s.pub\n", name, name);
    return 0;
}
