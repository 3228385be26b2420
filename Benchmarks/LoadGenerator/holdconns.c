// holdconns: opens N idle connections to a server on 127.0.0.1 and holds them, so that the
// runner can read what they cost the server (VmRSS and VmHWM in /proc/PID/status).
//
//   holdconns --port 9000 --connections 10000 [--hold 60]
//   ready connections=10000 seconds=0.84
//
// Each connection makes one 1-byte echo round trip before the next opens, so the server has
// accepted it and started its handler; then all stay open and silent until SIGTERM or --hold
// seconds pass. Raises its own RLIMIT_NOFILE to the hard limit. Exit status 1 when a
// connection fails.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void usage(void) {
    fprintf(stderr, "usage: holdconns --port PORT --connections N [--hold SECONDS]\n");
    exit(64);
}

// One connection that has made its round trip, or -1 after printing why not.
static int open_connection(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { perror("socket"); return -1; }
    struct timeval timeout = { .tv_sec = 10 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons(port) };
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char byte = 'x';
    if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0) { perror("connect"); close(fd); return -1; }
    if (write(fd, &byte, 1) != 1) { perror("write"); close(fd); return -1; }
    if (read(fd, &byte, 1) != 1) { fprintf(stderr, "read: no echo\n"); close(fd); return -1; }
    return fd;
}

int main(int argc, char **argv) {
    int port = 0, connections = 0, hold = 60;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--connections")) connections = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--hold")) hold = atoi(argv[i + 1]);
        else usage();
    }
    if (port <= 0 || connections <= 0 || hold <= 0 || argc % 2 == 0) usage();

    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < (rlim_t)connections + 16) {
        fprintf(stderr, "RLIMIT_NOFILE is %llu: too low for %d connections\n",
                (unsigned long long)limit.rlim_cur, connections);
        return 1;
    }

    double start = now();
    for (int i = 0; i < connections; i++) {
        if (open_connection(port) < 0) {
            fprintf(stderr, "connection %d of %d failed\n", i + 1, connections);
            return 1;
        }
    }
    printf("ready connections=%d seconds=%.2f\n", connections, now() - start);
    fflush(stdout);
    // The descriptors stay open, unread, until SIGTERM ends the process or the time is up.
    sleep(hold);
    return 0;
}
