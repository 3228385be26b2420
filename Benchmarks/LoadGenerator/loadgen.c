// The load generator: N connections to 127.0.0.1:PORT, each with exactly one message of B bytes
// in flight (write B, read B back, repeat), driven by one epoll thread. It warms up for W seconds,
// measures for S seconds, prints one machine-readable line and stops by itself. It does not use
// Reactor, so it measures every server the same way.
//
//   cc -O2 -o loadgen loadgen.c
//   loadgen --port 9000 --connections 64 --size 64 --warmup 1 --duration 5
//
// With --reconnect, each connection carries one message only: once its echo is back, the
// connection is closed and a new one opened in its place, so N connections are always being
// opened, used and closed, and the server accepts one connection per message (an accept burst
// that never ends). The round-trip time then runs from the connect to the echo's last byte.
//
// Output, on stdout:
//   phase=measure                       when the measured window opens (flushed at once, so a
//                                       runner can sample the server's CPU time right then)
//   messages=N seconds=S msgs_per_sec=R p50_us=X p99_us=Y p999_us=Z max_us=M total_messages=T errors=E
// `messages` counts round trips completed inside the window; `total_messages` counts all of them,
// warm-up included. Round-trip times go into a fixed log-linear histogram (32 sub-buckets per
// power of two, so within ~3%); the percentiles are bucket midpoints.
//
// Exit status: 0, or 1 when a connection failed (refused, reset, closed, or short data).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// --- histogram -----------------------------------------------------------------------------------
// Values below 2^SUB_BITS nanoseconds have a bucket each; above, each power of two is split into
// 2^SUB_BITS equal buckets.
#define SUB_BITS 5
#define SUB_COUNT (1u << SUB_BITS)
#define BUCKETS (SUB_COUNT + (64 - SUB_BITS) * SUB_COUNT)

static uint64_t histogram[BUCKETS];
static uint64_t histogram_count;
static uint64_t histogram_max;

static unsigned bucket_of(uint64_t value) {
    if (value < SUB_COUNT) return (unsigned)value;
    unsigned exponent = 63u - (unsigned)__builtin_clzll(value);        // >= SUB_BITS
    unsigned mantissa = (unsigned)(value >> (exponent - SUB_BITS)) & (SUB_COUNT - 1);
    return SUB_COUNT + (exponent - SUB_BITS) * SUB_COUNT + mantissa;
}

static double bucket_midpoint(unsigned bucket) {
    if (bucket < SUB_COUNT) return bucket;
    unsigned exponent = (bucket - SUB_COUNT) / SUB_COUNT + SUB_BITS;
    unsigned mantissa = (bucket - SUB_COUNT) % SUB_COUNT;
    double width = (double)(1ull << (exponent - SUB_BITS));
    double low = (double)(SUB_COUNT + mantissa) * width;
    return low + width / 2;
}

static void record(uint64_t nanoseconds) {
    histogram[bucket_of(nanoseconds)]++;
    histogram_count++;
    if (nanoseconds > histogram_max) histogram_max = nanoseconds;
}

static double percentile_us(double fraction) {
    if (histogram_count == 0) return 0;
    uint64_t rank = (uint64_t)(fraction * (double)histogram_count);
    if (rank >= histogram_count) rank = histogram_count - 1;
    uint64_t seen = 0;
    for (unsigned bucket = 0; bucket < BUCKETS; bucket++) {
        seen += histogram[bucket];
        if (seen > rank) return bucket_midpoint(bucket) / 1000.0;
    }
    return (double)histogram_max / 1000.0;
}

// --- connections ---------------------------------------------------------------------------------
struct connection {
    int fd;
    size_t sent;       // bytes of the current message written
    size_t received;   // bytes of its echo read
    uint64_t started;  // when its first byte was written (with --reconnect: its connect), ns
    int writing;       // registered for EPOLLOUT because a write was short
};

static size_t message_size = 64;
static char *outgoing;
static char *incoming;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void fail(const char *what) {
    perror(what);
    exit(1);
}

// While a write is short, the connection also waits for EPOLLOUT; it always reads, so a server
// that echoes while we still write can never fill both directions and stall.
static void set_interest(int epoll_fd, struct connection *c, int writing) {
    if (c->writing == writing) return;
    struct epoll_event event = { .events = EPOLLIN | (writing ? EPOLLOUT : 0), .data.ptr = c };
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &event) < 0) fail("epoll_ctl");
    c->writing = writing;
}

// Writes the rest of the current message. Returns -1 on a failed connection.
static int send_rest(int epoll_fd, struct connection *c) {
    while (c->sent < message_size) {
        ssize_t n = write(c->fd, outgoing + c->sent, message_size - c->sent);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) { set_interest(epoll_fd, c, 1); return 0; }
            return -1;
        }
        c->sent += (size_t)n;
    }
    set_interest(epoll_fd, c, 0);
    return 0;
}

static int start_message(int epoll_fd, struct connection *c) {
    c->sent = 0;
    c->received = 0;
    c->started = now_ns();
    return send_rest(epoll_fd, c);
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen --port PORT [--connections N] [--size BYTES] [--warmup SECONDS] [--duration SECONDS]"
            " [--reconnect]\n");
    exit(64);
}

static struct sockaddr_in server_address;

// Connects `c` (a blocking connect: on loopback the kernel completes the handshake inside the call,
// whether or not the server has accepted yet), and adds it to the epoll set.
static void open_connection(int epoll_fd, struct connection *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket");
    if (connect(fd, (struct sockaddr *)&server_address, sizeof server_address) < 0) fail("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) fail("fcntl");
    c->fd = fd;
    c->writing = 0;
    struct epoll_event event = { .events = EPOLLIN, .data.ptr = c };
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) < 0) fail("epoll_ctl");
}

int main(int argc, char **argv) {
    int port = 0;
    int connection_count = 1;
    double warmup = 1, duration = 5;
    int reconnect = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reconnect") == 0) { reconnect = 1; continue; }
        if (i + 1 >= argc) usage();
        if (strcmp(argv[i], "--port") == 0) port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--connections") == 0) connection_count = atoi(argv[++i]);
        else if (strcmp(argv[i], "--size") == 0) message_size = (size_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--warmup") == 0) warmup = atof(argv[++i]);
        else if (strcmp(argv[i], "--duration") == 0) duration = atof(argv[++i]);
        else usage();
    }
    if (port <= 0 || connection_count <= 0 || message_size == 0 || warmup < 0 || duration <= 0) usage();

    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < (rlim_t)connection_count + 64) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }

    outgoing = malloc(message_size);
    incoming = malloc(message_size < 65536 ? 65536 : message_size);
    for (size_t i = 0; i < message_size; i++) outgoing[i] = (char)('a' + i % 26);

    int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0) fail("epoll_create1");
    struct connection *connections = calloc((size_t)connection_count, sizeof *connections);
    server_address.sin_family = AF_INET;
    server_address.sin_port = htons((uint16_t)port);
    server_address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < connection_count; i++) open_connection(epoll_fd, &connections[i]);

    uint64_t begin = now_ns();
    uint64_t measure_from = begin + (uint64_t)(warmup * 1e9);
    uint64_t measure_until = measure_from + (uint64_t)(duration * 1e9);
    int measuring = warmup == 0;
    if (measuring) { printf("phase=measure\n"); fflush(stdout); }
    uint64_t messages = 0, total_messages = 0, errors = 0;

    for (int i = 0; i < connection_count; i++)
        if (start_message(epoll_fd, &connections[i]) < 0) fail("write");

    enum { MAX_EVENTS = 256 };
    struct epoll_event events[MAX_EVENTS];
    int open_connections = connection_count;
    for (;;) {
        uint64_t now = now_ns();
        if (!measuring && now >= measure_from) {
            measuring = 1;
            printf("phase=measure\n");
            fflush(stdout);
        }
        if (now >= measure_until || open_connections == 0) break;
        uint64_t next = measuring ? measure_until : measure_from;
        int timeout_ms = (int)((next - now) / 1000000u) + 1;
        int count = epoll_wait(epoll_fd, events, MAX_EVENTS, timeout_ms);
        if (count < 0) {
            if (errno == EINTR) continue;
            fail("epoll_wait");
        }
        for (int e = 0; e < count; e++) {
            struct connection *c = events[e].data.ptr;
            if (c->fd < 0) continue;
            if ((events[e].events & EPOLLOUT) && c->writing) {
                if (send_rest(epoll_fd, c) < 0) goto failed;
            }
            if (!(events[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
            ssize_t n = read(c->fd, incoming, message_size - c->received);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (n <= 0) goto failed;
            c->received += (size_t)n;
            if (c->received < message_size) continue;
            uint64_t done = now_ns();
            total_messages++;
            if (measuring && done < measure_until) {
                messages++;
                record(done - c->started);
            }
            if (reconnect) {
                // Closing drops the descriptor from the epoll set, and a wait reports each
                // connection once, so no event of this turn names the closed descriptor.
                close(c->fd);
                uint64_t connecting = now_ns();
                open_connection(epoll_fd, c);
                if (start_message(epoll_fd, c) < 0) goto failed;
                c->started = connecting;
                continue;
            }
            if (start_message(epoll_fd, c) < 0) goto failed;
            continue;
        failed:
            errors++;
            epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
            open_connections--;
        }
    }
    double seconds = measuring ? (double)((now_ns() < measure_until ? now_ns() : measure_until) - measure_from) / 1e9 : 0;
    printf("messages=%llu seconds=%.3f msgs_per_sec=%.1f p50_us=%.2f p99_us=%.2f p999_us=%.2f max_us=%.2f"
           " total_messages=%llu errors=%llu\n",
           (unsigned long long)messages, seconds, seconds > 0 ? (double)messages / seconds : 0,
           percentile_us(0.50), percentile_us(0.99), percentile_us(0.999), (double)histogram_max / 1000.0,
           (unsigned long long)total_messages, (unsigned long long)errors);
    fflush(stdout);
    for (int i = 0; i < connection_count; i++)
        if (connections[i].fd >= 0) close(connections[i].fd);
    return errors ? 1 : 0;
}
