// Thin shims over what the Swift importer cannot reach directly: packed structs,
// macros, GNU-only calls and thread-local storage. No logic lives here.
#ifndef CREACTOR_H
#define CREACTOR_H

#include <stdint.h>

#ifdef __linux__
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/// One readiness event, unpacked: `struct epoll_event` is packed on x86_64.
typedef struct {
    uint64_t token;
    uint32_t events;
} creactor_event;

static const uint32_t CREACTOR_EPOLLIN = EPOLLIN;
static const uint32_t CREACTOR_EPOLLOUT = EPOLLOUT;
static const uint32_t CREACTOR_EPOLLRDHUP = EPOLLRDHUP;
static const uint32_t CREACTOR_EPOLLHUP = EPOLLHUP;
static const uint32_t CREACTOR_EPOLLERR = EPOLLERR;
static const uint32_t CREACTOR_EPOLLET = EPOLLET;

static inline int creactor_epoll_create(void) {
    return epoll_create1(EPOLL_CLOEXEC);
}

static inline int creactor_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event event = { .events = events, .data.u64 = token };
    return epoll_ctl(epfd, op, fd, &event);
}

static inline size_t creactor_epoll_event_size(void) {
    return sizeof(struct epoll_event);
}

/// Waits on `epfd`, using `scratch` (room for `capacity` kernel events) and writing
/// the unpacked events to `out`. Returns the count, or -1 with errno set.
static inline int creactor_epoll_wait(int epfd, void *scratch, creactor_event *out, int capacity, int timeout_ms) {
    struct epoll_event *events = (struct epoll_event *)scratch;
    int count = epoll_wait(epfd, events, capacity, timeout_ms);
    for (int i = 0; i < count; i++) {
        out[i].token = events[i].data.u64;
        out[i].events = events[i].events;
    }
    return count;
}

static inline int creactor_eventfd(void) {
    return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

// GNU-only names live in CReactor.c, which is compiled with _GNU_SOURCE; this header
// reaches the system headers through modules, where that definition does not apply.

/// `POLLRDHUP`: the peer shut down its writing side.
extern const short CREACTOR_POLLRDHUP;

/// `EAI_NODATA`: the name exists but has no address.
extern const int CREACTOR_EAI_NODATA;

/// `pipe2(fds, O_CLOEXEC | O_NONBLOCK)`.
int creactor_pipe(int fds[2]);

// Declared, not included: pulling <sys/socket.h> into this module's header changes
// which module the Swift importer credits socket names to.
struct sockaddr;

/// `accept4(fd, address, length, SOCK_CLOEXEC | SOCK_NONBLOCK)`; `length` is a `socklen_t`.
int creactor_accept(int fd, struct sockaddr *address, uint32_t *length);

/// The process, user and group of a Unix socket's peer (`SO_PEERCRED`). Returns 0,
/// or -1 with errno set.
int creactor_peer_credentials(int fd, int32_t *pid, uint32_t *uid, uint32_t *gid);

/// Names the calling thread (at most 15 bytes are kept).
void creactor_set_thread_name(const char *name);

/// `struct mmsghdr`, which glibc declares only under `_GNU_SOURCE`. Left incomplete:
/// Swift lays the array out itself and checks it against these two numbers.
struct mmsghdr;
extern const size_t CREACTOR_MMSGHDR_SIZE;
extern const size_t CREACTOR_MMSGHDR_LENGTH_OFFSET;

/// `sendmmsg(2)`.
int creactor_sendmmsg(int fd, struct mmsghdr *messages, unsigned int count, int flags);

/// `recvmmsg(2)` with no timeout.
int creactor_recvmmsg(int fd, struct mmsghdr *messages, unsigned int count, int flags);

static inline uint64_t creactor_monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/// Blocks SIGPIPE for the calling thread only; returns whether it was already blocked.
static inline int creactor_block_sigpipe(void) {
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    return sigismember(&old, SIGPIPE);
}

static inline void creactor_unblock_sigpipe(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/// Takes a SIGPIPE that a failed write left pending on this thread, so that it is
/// never delivered once the thread unblocks it.
static inline void creactor_consume_sigpipe(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    struct timespec zero = { 0, 0 };
    int saved = errno;
    while (sigtimedwait(&set, NULL, &zero) == SIGPIPE) {}
    errno = saved;
}
#endif

/// The event loop that runs on the calling thread, or NULL.
extern _Thread_local void *creactor_current_loop;

static inline void *creactor_get_current_loop(void) {
    return creactor_current_loop;
}

static inline void creactor_set_current_loop(void *loop) {
    creactor_current_loop = loop;
}

#endif
