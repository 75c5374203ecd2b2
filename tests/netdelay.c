/* netdelay: a userspace Ethernet switch between TAP devices that holds
 * every frame for a fixed delay before forwarding it.
 *
 *   netdelay DELAY_MS MAX_SECONDS NETNS:IFNAME...
 *
 * For each NETNS:IFNAME it creates the TAP device IFNAME inside the network
 * namespace /run/netns/NETNS, prints "ready" once all exist, then switches
 * frames among them (learning source MAC addresses, flooding broadcasts and
 * unknown destinations), each one delayed by DELAY_MS milliseconds.  A frame
 * from one namespace to another thus takes DELAY_MS one way, like
 * `tc qdisc add dev IF root netem delay DELAY_MS` on each sender's link.
 * tests/it_multihost.sh uses it where the kernel has no sch_netem; it is
 * compiled by that script, not by make.  Exits on SIGTERM/SIGINT or after
 * MAX_SECONDS; the TAP devices disappear with it.  Frames that find a full
 * queue are dropped (TCP retransmits them). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define MAXP 16
#define SLOTS 2048
#define FRAME 9216 /* MTU 9000 + Ethernet header, rounded up */
#define MACS 256

typedef struct {
    uint64_t due;
    uint32_t len;
    unsigned char data[FRAME];
} slot_t;

typedef struct {
    int fd;
    slot_t *q;
    unsigned head, tail; /* queue of frames to write to this port */
    uint64_t sent, dropped;
} port_t;

static port_t g_port[MAXP];
static int g_np;
static struct {
    unsigned char mac[6];
    int port;
} g_mac[MACS];
static int g_nmac;
static volatile sig_atomic_t g_stop;

static void s_on_signal(int sig) { (void)sig; g_stop = 1; }

static uint64_t s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int s_open_tap(const char *ns, const char *ifname, int self)
{
    char path[512];
    snprintf(path, sizeof path, "/run/netns/%s", ns);
    int nsfd = open(path, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0) {
        fprintf(stderr, "netdelay: cannot enter network namespace %s: %s\n", path, strerror(errno));
        return -1;
    }
    close(nsfd);
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
    if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0) {
        fprintf(stderr, "netdelay: cannot create TAP %s in %s: %s\n", ifname, ns, strerror(errno));
        return -1;
    }
    if (setns(self, CLONE_NEWNET) < 0) {
        fprintf(stderr, "netdelay: cannot return to the first namespace: %s\n", strerror(errno));
        return -1;
    }
    return fd;
}

static int s_lookup(const unsigned char *mac)
{
    for (int i = 0; i < g_nmac; i++)
        if (!memcmp(g_mac[i].mac, mac, 6))
            return g_mac[i].port;
    return -1;
}

static void s_learn(const unsigned char *mac, int port)
{
    if (mac[0] & 1)
        return;
    for (int i = 0; i < g_nmac; i++)
        if (!memcmp(g_mac[i].mac, mac, 6)) {
            g_mac[i].port = port;
            return;
        }
    if (g_nmac < MACS) {
        memcpy(g_mac[g_nmac].mac, mac, 6);
        g_mac[g_nmac++].port = port;
    }
}

static void s_enqueue(int out, const unsigned char *buf, size_t len, uint64_t due)
{
    port_t *p = &g_port[out];
    if (p->tail - p->head >= SLOTS) {
        p->dropped++;
        return;
    }
    slot_t *s = &p->q[p->tail % SLOTS];
    s->due = due;
    s->len = (uint32_t)len;
    memcpy(s->data, buf, len);
    p->tail++;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: netdelay DELAY_MS MAX_SECONDS NETNS:IFNAME...\n");
        return 2;
    }
    double delay_ms = atof(argv[1]);
    double max_s = atof(argv[2]);
    if (delay_ms < 0 || max_s <= 0 || argc - 3 > MAXP) {
        fprintf(stderr, "netdelay: bad arguments\n");
        return 2;
    }
    uint64_t delay = (uint64_t)(delay_ms * 1e6);
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self < 0) {
        perror("netdelay: /proc/self/ns/net");
        return 1;
    }
    for (int i = 3; i < argc; i++) {
        char ns[256];
        snprintf(ns, sizeof ns, "%s", argv[i]);
        char *colon = strchr(ns, ':');
        if (!colon) {
            fprintf(stderr, "netdelay: '%s' is not NETNS:IFNAME\n", argv[i]);
            return 2;
        }
        *colon = 0;
        int fd = s_open_tap(ns, colon + 1, self);
        if (fd < 0)
            return 1;
        g_port[g_np].fd = fd;
        g_port[g_np].q = calloc(SLOTS, sizeof(slot_t));
        if (!g_port[g_np].q) {
            fprintf(stderr, "netdelay: out of memory\n");
            return 1;
        }
        g_np++;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    printf("ready\n");
    fflush(stdout);

    struct pollfd pfd[MAXP];
    for (int i = 0; i < g_np; i++) {
        pfd[i].fd = g_port[i].fd;
        pfd[i].events = POLLIN;
    }
    static unsigned char buf[FRAME];
    uint64_t end = s_now() + (uint64_t)(max_s * 1e9);
    uint64_t frames = 0;
    while (!g_stop) {
        uint64_t now = s_now();
        if (now >= end)
            break;
        /* write every frame that is due */
        uint64_t next = now + 100000000ull; /* wake at least every 100 ms */
        for (int i = 0; i < g_np; i++) {
            port_t *p = &g_port[i];
            while (p->head != p->tail) {
                slot_t *s = &p->q[p->head % SLOTS];
                if (s->due > now) {
                    if (s->due < next)
                        next = s->due;
                    break;
                }
                if (write(p->fd, s->data, s->len) < 0)
                    p->dropped++;
                else
                    p->sent++;
                p->head++;
            }
        }
        struct timespec to = {(time_t)((next - now) / 1000000000ull), (long)((next - now) % 1000000000ull)};
        int n = ppoll(pfd, (nfds_t)g_np, &to, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("netdelay: ppoll");
            return 1;
        }
        if (n == 0)
            continue;
        now = s_now();
        for (int i = 0; i < g_np; i++) {
            if (!(pfd[i].revents & POLLIN))
                continue;
            for (int k = 0; k < 64; k++) { /* a bounded burst per port */
                ssize_t len = read(g_port[i].fd, buf, sizeof buf);
                if (len < 14)
                    break;
                frames++;
                s_learn(buf + 6, i);
                int out = (buf[0] & 1) ? -1 : s_lookup(buf);
                if (out == i)
                    continue;
                if (out >= 0) {
                    s_enqueue(out, buf, (size_t)len, now + delay);
                } else {
                    for (int o = 0; o < g_np; o++)
                        if (o != i)
                            s_enqueue(o, buf, (size_t)len, now + delay);
                }
            }
        }
    }
    uint64_t dropped = 0;
    for (int i = 0; i < g_np; i++)
        dropped += g_port[i].dropped;
    fprintf(stderr, "netdelay: %llu frames switched, %llu dropped\n", (unsigned long long)frames,
            (unsigned long long)dropped);
    return 0;
}
