// The floor for HTTP/1.1 plaintext on epoll: a single-threaded, level-triggered server answering
// every request with 200 "Hello, World!" and keep-alive. Binds 127.0.0.1 only.
//
//   cc -O2 -o epoll_http epoll_http.c && ./epoll_http 8080
//
// Pipelining-safe: each read appends to the connection's input, every complete request in it
// (head up to CRLFCRLF, plus a Content-Length body if one is announced) gets its response, and the
// responses of one read leave in one write. It does not validate requests: it is a floor, not a
// server. A request head larger than the input buffer closes the connection.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define INPUT_SIZE 16384
#define OUTPUT_SIZE 65536

static const char response[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "Hello, World!";
#define RESPONSE_LENGTH (sizeof response - 1)

struct connection {
    size_t used;              // bytes of input held
    char *output;             // responses not yet written, when the socket was full
    size_t output_length;
    size_t output_offset;
    char input[INPUT_SIZE];
};

static struct connection **connections; // indexed by fd
static size_t connections_capacity;
static volatile sig_atomic_t stopping;

static void on_signal(int signal_number) { (void)signal_number; stopping = 1; }

static int listen_on(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { perror("socket"); exit(1); }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) { perror("bind"); exit(1); }
    if (listen(fd, 4096) < 0) { perror("listen"); exit(1); }
    return fd;
}

static struct connection *connection_for(int fd) {
    if ((size_t)fd >= connections_capacity) {
        size_t capacity = connections_capacity ? connections_capacity : 1024;
        while (capacity <= (size_t)fd) capacity *= 2;
        connections = realloc(connections, capacity * sizeof *connections);
        memset(connections + connections_capacity, 0, (capacity - connections_capacity) * sizeof *connections);
        connections_capacity = capacity;
    }
    if (!connections[fd]) connections[fd] = calloc(1, sizeof **connections);
    return connections[fd];
}

static void drop(int epoll_fd, int fd) {
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, NULL);
    if ((size_t)fd < connections_capacity && connections[fd]) {
        free(connections[fd]->output);
        free(connections[fd]);
        connections[fd] = NULL;
    }
    close(fd);
}

// The Content-Length announced in the head [start, end), or 0.
static size_t content_length(const char *start, const char *end) {
    static const char name[] = "\r\ncontent-length:";
    size_t name_length = sizeof name - 1;
    for (const char *p = start; p + name_length <= end; p++) {
        if (*p == '\r' && strncasecmp(p, name, name_length) == 0) {
            p += name_length;
            while (p < end && *p == ' ') p++;
            size_t value = 0;
            while (p < end && isdigit((unsigned char)*p)) value = value * 10 + (size_t)(*p++ - '0');
            return value;
        }
    }
    return 0;
}

// Writes what `c` still holds. Returns 1 when drained, 0 when the socket is full, -1 on error.
static int flush_output(int fd, struct connection *c) {
    while (c->output_offset < c->output_length) {
        ssize_t n = write(fd, c->output + c->output_offset, c->output_length - c->output_offset);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN ? 0 : -1;
        }
        c->output_offset += (size_t)n;
    }
    c->output_length = c->output_offset = 0;
    return 1;
}

// Reads once, answers every complete request. Returns -1 when the connection is to be dropped.
static int serve(int epoll_fd, int fd, struct connection *c) {
    static char output[OUTPUT_SIZE];
    ssize_t n = read(fd, c->input + c->used, INPUT_SIZE - c->used);
    if (n <= 0) return (n < 0 && (errno == EAGAIN || errno == EINTR)) ? 0 : -1;
    c->used += (size_t)n;

    size_t consumed = 0, produced = 0;
    for (;;) {
        char *start = c->input + consumed;
        size_t available = c->used - consumed;
        char *head_end = memmem(start, available, "\r\n\r\n", 4);
        if (!head_end) break;
        size_t request_length = (size_t)(head_end + 4 - start) + content_length(start, head_end + 2);
        if (request_length > available) break;
        consumed += request_length;
        if (produced + RESPONSE_LENGTH > OUTPUT_SIZE) {
            if (write(fd, output, produced) != (ssize_t)produced) return -1;
            produced = 0;
        }
        memcpy(output + produced, response, RESPONSE_LENGTH);
        produced += RESPONSE_LENGTH;
    }
    if (consumed == 0 && c->used == INPUT_SIZE) return -1;
    memmove(c->input, c->input + consumed, c->used - consumed);
    c->used -= consumed;

    if (produced == 0) return 0;
    ssize_t written = write(fd, output, produced);
    if (written == (ssize_t)produced) return 0;
    if (written < 0) {
        if (errno != EAGAIN && errno != EINTR) return -1;
        written = 0;
    }
    c->output = realloc(c->output, produced - (size_t)written);
    memcpy(c->output, output + written, produced - (size_t)written);
    c->output_length = produced - (size_t)written;
    c->output_offset = 0;
    struct epoll_event wait_writable = { .events = EPOLLOUT, .data.fd = fd };
    epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &wait_writable);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: epoll_http PORT\n"); return 64; }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction action = { .sa_handler = on_signal };
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);

    int listener = listen_on(atoi(argv[1]));
    int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event event = { .events = EPOLLIN, .data.fd = listener };
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &event);

    struct epoll_event events[MAX_EVENTS];
    while (!stopping) {
        int count = epoll_wait(epoll_fd, events, MAX_EVENTS, -1);
        if (count < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < count; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                for (;;) {
                    int client = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (client < 0) break;
                    int one = 1;
                    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event client_event = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = client };
                    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, client, &client_event);
                }
                continue;
            }
            struct connection *c = connection_for(fd);
            if (events[i].events & EPOLLOUT) {
                int drained = flush_output(fd, c);
                if (drained < 0) { drop(epoll_fd, fd); continue; }
                if (drained) {
                    struct epoll_event resume = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = fd };
                    epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &resume);
                }
                continue;
            }
            if (serve(epoll_fd, fd, c) < 0) drop(epoll_fd, fd);
        }
    }
    close(epoll_fd);
    close(listener);
    return 0;
}
