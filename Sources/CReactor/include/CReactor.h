// Thin shims over what the Swift importer cannot reach directly: packed structs,
// macros, GNU-only calls and thread-local storage. No logic lives here.
#ifndef CREACTOR_H
#define CREACTOR_H

#include <stdbool.h>
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

// io_uring: the kernel's structures are mirrored here with the same layout (CReactor.c
// checks each against <linux/io_uring.h>), so that Swift fills and reads them inline.

/// One submission queue entry (`struct io_uring_sqe`, 64 bytes).
typedef struct {
    uint8_t opcode;
    uint8_t flags;
    uint16_t ioprio;
    int32_t fd;
    uint64_t off;
    uint64_t addr;
    uint32_t len;
    uint32_t op_flags;
    uint64_t user_data;
    uint16_t buf_group;
    uint16_t personality;
    uint32_t file_index;
    uint64_t addr3;
    uint64_t pad;
} creactor_sqe;

/// One completion queue entry (`struct io_uring_cqe`, 16 bytes).
typedef struct {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
} creactor_cqe;

/// A ring set up by `creactor_uring_setup`: its descriptor and where its queues are mapped.
typedef struct {
    int fd;
    uint32_t features;
    uint32_t sq_entries;
    uint32_t sq_mask;
    uint32_t cq_entries;
    uint32_t cq_mask;
    uint32_t *sq_head;
    uint32_t *sq_tail;
    uint32_t *sq_flags;
    uint32_t *sq_array;
    creactor_sqe *sqes;
    uint32_t *cq_head;
    uint32_t *cq_tail;
    creactor_cqe *cqes;
    void *sq_ring;
    size_t sq_ring_size;
    void *cq_ring;
    size_t cq_ring_size;
    size_t sqes_size;
} creactor_uring;

/// `io_uring_setup(2)` with `flags` (plus `IORING_SETUP_CQSIZE` when `cq_entries` is not
/// zero), then maps the queues. Returns 0, or a negative errno; nothing stays open then.
int creactor_uring_setup(uint32_t entries, uint32_t cq_entries, uint32_t flags, creactor_uring *ring);

/// Unmaps the queues and closes the ring.
void creactor_uring_close(creactor_uring *ring);

/// `io_uring_enter(2)`; with `timeout_ns` >= 0 the wait ends after that long
/// (`IORING_ENTER_EXT_ARG`). Returns the count submitted, or a negative errno.
int creactor_uring_enter(int fd, uint32_t to_submit, uint32_t min_complete, uint32_t flags, int64_t timeout_ns);

/// `io_uring_register(2)`. Returns its result, or a negative errno.
int creactor_uring_register(int fd, uint32_t opcode, void *arg, uint32_t count);

extern const uint32_t CREACTOR_IORING_SETUP_SINGLE_ISSUER;
extern const uint32_t CREACTOR_IORING_SETUP_DEFER_TASKRUN;
extern const uint32_t CREACTOR_IORING_SETUP_COOP_TASKRUN;
extern const uint32_t CREACTOR_IORING_SETUP_SUBMIT_ALL;
extern const uint32_t CREACTOR_IORING_SETUP_R_DISABLED;
extern const uint32_t CREACTOR_IORING_SETUP_TASKRUN_FLAG;
extern const uint32_t CREACTOR_IORING_FEAT_NODROP;
extern const uint32_t CREACTOR_IORING_FEAT_EXT_ARG;
extern const uint32_t CREACTOR_IORING_ENTER_GETEVENTS;
extern const uint32_t CREACTOR_IORING_SQ_CQ_OVERFLOW;
extern const uint32_t CREACTOR_IORING_SQ_TASKRUN;
extern const uint32_t CREACTOR_IORING_CQE_F_MORE;
extern const uint32_t CREACTOR_IORING_CQE_F_BUFFER;
extern const uint32_t CREACTOR_IORING_CQE_F_BUF_MORE;
extern const uint16_t CREACTOR_IOU_PBUF_RING_INC;
extern const uint32_t CREACTOR_IORING_POLL_ADD_MULTI;
extern const uint32_t CREACTOR_IORING_ASYNC_CANCEL_ANY;
extern const uint32_t CREACTOR_IORING_ASYNC_CANCEL_ALL;
extern const uint32_t CREACTOR_IORING_REGISTER_ENABLE_RINGS;
extern const uint8_t CREACTOR_IORING_OP_POLL_ADD;
extern const uint8_t CREACTOR_IORING_OP_ASYNC_CANCEL;
extern const uint8_t CREACTOR_IORING_OP_READ;
extern const uint8_t CREACTOR_IORING_OP_WRITE;
extern const uint8_t CREACTOR_IORING_OP_SEND;
extern const uint8_t CREACTOR_IORING_OP_RECV;
extern const uint8_t CREACTOR_IORING_OP_ACCEPT;
extern const uint8_t CREACTOR_IORING_OP_CONNECT;
extern const uint8_t CREACTOR_IORING_OP_SENDMSG;
extern const uint8_t CREACTOR_IORING_OP_RECVMSG;
extern const uint8_t CREACTOR_IORING_OP_CLOSE;
extern const uint16_t CREACTOR_IORING_ACCEPT_MULTISHOT;
extern const uint16_t CREACTOR_IORING_RECV_MULTISHOT;
extern const uint8_t CREACTOR_IOSQE_BUFFER_SELECT;
extern const uint32_t CREACTOR_IORING_CQE_BUFFER_SHIFT;

/// One entry of a provided-buffer ring (`struct io_uring_buf`, 16 bytes). The ring's
/// tail overlays the last two bytes of its first entry.
typedef struct {
    uint64_t addr;
    uint32_t len;
    uint16_t bid;
    uint16_t tail;
} creactor_buffer_entry;

/// Registers `entries` (a power of two, page-aligned memory) as provided-buffer ring
/// `group` of the ring `fd`, with `flags` (`IOU_PBUF_RING_*`). Returns 0, or a negative
/// errno (`EINVAL` for a flag the kernel does not know).
int creactor_uring_register_buffer_ring(int fd, creactor_buffer_entry *entries, uint32_t count, uint16_t group,
                                        uint16_t flags);

/// Unregisters provided-buffer ring `group`. Returns 0, or a negative errno.
int creactor_uring_unregister_buffer_ring(int fd, uint16_t group);

/// The head of provided-buffer ring `group`: where the kernel picks its next buffer
/// (`IORING_REGISTER_PBUF_STATUS`, Linux 6.8). Returns it, or a negative errno.
int creactor_uring_buffer_ring_head(int fd, uint16_t group);

/// Publishes a provided-buffer ring's new tail, after the entries it covers.
static inline void creactor_publish_buffer_tail(creactor_buffer_entry *entries, uint16_t tail) {
    __atomic_store_n(&entries[0].tail, tail, __ATOMIC_RELEASE);
}

/// Loads a ring index the kernel writes, ordered before the entries it publishes.
static inline uint32_t creactor_load_acquire(const uint32_t *index) {
    return __atomic_load_n(index, __ATOMIC_ACQUIRE);
}

/// Stores a ring index the kernel reads, ordered after the entries it publishes.
static inline void creactor_store_release(uint32_t *index, uint32_t value) {
    __atomic_store_n(index, value, __ATOMIC_RELEASE);
}

/// Loads a flag word the kernel updates, with no ordering.
static inline uint32_t creactor_load_relaxed(const uint32_t *word) {
    return __atomic_load_n(word, __ATOMIC_RELAXED);
}

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

// ---- Task cancellation records ----
//
// `withTaskCancellationHandler` installs a cancellation record on the current task
// through two entry points of the Swift concurrency runtime. Reactor installs the same
// record around waits that must not leave their executor, and Swift code may not name
// runtime entry points, so the shim calls them, in their Swift calling convention.

/// Installs a cancellation record on the current task. While it is installed, cancelling
/// the task calls `creactor_task_cancelled(context)` once, on the cancelling thread; if the
/// task is cancelled already, that call happens at once, inside this one.
///
/// Returns what `creactor_task_remove_cancellation` takes (NULL if the record fired at once).
void *creactor_task_add_cancellation(void *context);

/// Removes the record `creactor_task_add_cancellation` returned: the task's innermost.
void creactor_task_remove_cancellation(void *record);

/// Whether the current task is cancelled; false outside a task. `Task.isCancelled`
/// without its retain and release of the task.
bool creactor_task_is_cancelled(void);

/// What a fired record calls; Reactor defines it.
void creactor_task_cancelled(void *context);

#endif

