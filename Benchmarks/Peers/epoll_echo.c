// The floor a reactor can reach on epoll: a single-threaded, level-triggered echo server that makes
// one read and one write per message, plus its share of epoll_wait. Binds 127.0.0.1 only.
//
//   cc -O2 -o epoll_echo epoll_echo.c && ./epoll_echo 9000
//
// Level-triggered on purpose: after a read that returned data we go back to epoll_wait instead of
// reading until EAGAIN, so a ping-pong message costs exactly read + write. A partial write (only
// with large messages) parks the rest in a per-connection buffer, stops reading that connection
// and waits for EPOLLOUT, so memory stays bounded.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define BUFFER_SIZE 65536

struct pending {
    char *bytes;
    size_t length;
    size_t offset;
};

static struct pending *pending; // indexed by fd; allocated on first partial write only
static size_t pending_capacity;
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

static struct pending *pending_for(int fd) {
    if ((size_t)fd >= pending_capacity) {
        size_t capacity = pending_capacity ? pending_capacity : 1024;
        while (capacity <= (size_t)fd) capacity *= 2;
        pending = realloc(pending, capacity * sizeof *pending);
        memset(pending + pending_capacity, 0, (capacity - pending_capacity) * sizeof *pending);
        pending_capacity = capacity;
    }
    return &pending[fd];
}

static void drop(int epoll_fd, int fd) {
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, NULL);
    if ((size_t)fd < pending_capacity) {
        free(pending[fd].bytes);
        pending[fd] = (struct pending){0};
    }
    close(fd);
}

// Writes what `p` still holds. Returns 1 when drained, 0 when the socket is full, -1 on error.
static int flush_pending(int fd, struct pending *p) {
    while (p->offset < p->length) {
        ssize_t n = write(fd, p->bytes + p->offset, p->length - p->offset);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN ? 0 : -1;
        }
        p->offset += (size_t)n;
    }
    p->length = p->offset = 0;
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: epoll_echo PORT\n"); return 64; }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction action = { .sa_handler = on_signal };
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);

    int listener = listen_on(atoi(argv[1]));
    int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event event = { .events = EPOLLIN, .data.fd = listener };
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &event);

    static char buffer[BUFFER_SIZE];
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
                    if (client < 0) break; // EAGAIN, or EMFILE: try again on the next wake-up
                    int one = 1;
                    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event client_event = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = client };
                    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, client, &client_event);
                }
                continue;
            }
            if (events[i].events & EPOLLOUT) {
                struct pending *p = pending_for(fd);
                int drained = flush_pending(fd, p);
                if (drained < 0) { drop(epoll_fd, fd); continue; }
                if (drained) {
                    struct epoll_event resume = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = fd };
                    epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &resume);
                }
                continue;
            }
            if (!(events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) continue;
            ssize_t n = read(fd, buffer, sizeof buffer);
            if (n <= 0) {
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                drop(epoll_fd, fd);
                continue;
            }
            ssize_t written = write(fd, buffer, (size_t)n);
            if (written == n) continue;
            if (written < 0) {
                if (errno != EAGAIN && errno != EINTR) { drop(epoll_fd, fd); continue; }
                written = 0;
            }
            struct pending *p = pending_for(fd);
            p->bytes = realloc(p->bytes, (size_t)(n - written));
            memcpy(p->bytes, buffer + written, (size_t)(n - written));
            p->length = (size_t)(n - written);
            p->offset = 0;
            struct epoll_event wait_writable = { .events = EPOLLOUT, .data.fd = fd };
            epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &wait_writable);
        }
    }
    close(epoll_fd);
    close(listener);
    return 0;
}
