// The floor a reactor can reach on io_uring: a single-threaded echo server on raw io_uring system
// calls (no liburing), the completion-based counterpart of epoll_echo.c. Binds 127.0.0.1 only.
//
//   cc -O2 -o uring_echo uring_echo.c && ./uring_echo 9000
//
// Needs Linux 6.0 or later (multishot recv, provided-buffer rings, SINGLE_ISSUER) and the kernel's
// <linux/io_uring.h>; it prefers DEFER_TASKRUN (6.1) and falls back to COOP_TASKRUN, then to plain.
//
// One multishot accept on the listener; one multishot recv per connection that picks its buffers
// from a provided-buffer ring; one IORING_OP_SEND at a time per connection, straight from the
// buffer the bytes arrived in, which goes back to the ring only when the send has completed (a
// short send resubmits the rest). Each turn of the loop reaps every completion, queues the
// submissions they call for, and makes one io_uring_enter that both submits and waits, so with
// many busy connections one system call carries many messages.
//
// Memory is bounded by the buffer ring (BUFFER_COUNT x BUFFER_SIZE). A connection whose queue of
// unsent buffers reaches QUEUE_LIMIT (its client is not reading) has its recv cancelled until the
// queue drains. When the ring runs dry a recv ends with ENOBUFS; that connection waits in a queue
// and its recv is re-armed once buffers come back. The pool is shared, so about
// BUFFER_COUNT / QUEUE_LIMIT clients that never read can hold all of it, and the others then wait
// for them to read or leave; epoll_echo instead bounds each connection and not the total.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SQ_ENTRIES 1024
#define CQ_ENTRIES (4 * SQ_ENTRIES)
#define BUFFER_COUNT 1024 // a power of two: it is also the size of the provided-buffer ring
#define BUFFER_SIZE 65536 // what epoll_echo reads at once
#define BUFFER_GROUP 0
#define QUEUE_LIMIT 4     // unsent buffers a connection may hold before its recv is paused
#define NO_BUFFER 0xFFFF
#define NONE (-1)

// user_data: operation in the top byte, the connection's generation in the next 24 bits, the fd
// in the low 32. The generation tells a completion for a closed descriptor from one for a new
// connection that reuses its number.
enum { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_CANCEL };

static uint64_t tag(unsigned op, int fd, uint32_t generation) {
    return (uint64_t)op << 56 | (uint64_t)(generation & 0xFFFFFF) << 32 | (uint32_t)fd;
}

// --- the ring ------------------------------------------------------------------------------------

static struct {
    int fd;
    unsigned *sq_head, *sq_tail, *sq_flags;
    unsigned sq_mask, sq_entries, sq_local_tail;
    struct io_uring_sqe *sqes;
    unsigned *cq_head, *cq_tail;
    unsigned cq_mask;
    struct io_uring_cqe *cqes;
} ring;

static int ring_enter(unsigned to_submit, unsigned min_complete, unsigned flags) {
    return (int)syscall(__NR_io_uring_enter, ring.fd, to_submit, min_complete, flags, NULL, 0);
}

static void *map_or_die(size_t length, int fd, off_t offset) {
    void *memory = mmap(NULL, length, PROT_READ | PROT_WRITE,
                        fd < 0 ? MAP_PRIVATE | MAP_ANONYMOUS : MAP_SHARED | MAP_POPULATE, fd, offset);
    if (memory == MAP_FAILED) { perror("mmap"); exit(1); }
    return memory;
}

static void setup_ring(void) {
    static const struct { unsigned flags; const char *name; } modes[] = {
        { IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN" },
        { IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN" },
        { 0, "no task-run flags" },
    };
    struct io_uring_params params;
    ring.fd = -1;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        memset(&params, 0, sizeof params);
        params.flags = modes[i].flags | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
        params.cq_entries = CQ_ENTRIES;
        ring.fd = (int)syscall(__NR_io_uring_setup, SQ_ENTRIES, &params);
        if (ring.fd >= 0) {
            if (i > 0) fprintf(stderr, "uring_echo: running with %s\n", modes[i].name);
            break;
        }
        if (errno != EINVAL) break;
    }
    if (ring.fd < 0) { perror("io_uring_setup"); exit(1); }

    size_t sq_length = params.sq_off.array + params.sq_entries * sizeof(unsigned);
    size_t cq_length = params.cq_off.cqes + params.cq_entries * sizeof(struct io_uring_cqe);
    char *sq, *cq;
    if (params.features & IORING_FEAT_SINGLE_MMAP) {
        if (cq_length > sq_length) sq_length = cq_length;
        sq = cq = map_or_die(sq_length, ring.fd, IORING_OFF_SQ_RING);
    } else {
        sq = map_or_die(sq_length, ring.fd, IORING_OFF_SQ_RING);
        cq = map_or_die(cq_length, ring.fd, IORING_OFF_CQ_RING);
    }
    ring.sq_head = (unsigned *)(sq + params.sq_off.head);
    ring.sq_tail = (unsigned *)(sq + params.sq_off.tail);
    ring.sq_flags = (unsigned *)(sq + params.sq_off.flags);
    ring.sq_mask = *(unsigned *)(sq + params.sq_off.ring_mask);
    ring.sq_entries = params.sq_entries;
    ring.sq_local_tail = *ring.sq_tail;
    unsigned *array = (unsigned *)(sq + params.sq_off.array);
    for (unsigned i = 0; i < params.sq_entries; i++) array[i] = i; // slot i always holds SQE i
    ring.sqes = map_or_die(params.sq_entries * sizeof(struct io_uring_sqe), ring.fd, IORING_OFF_SQES);
    ring.cq_head = (unsigned *)(cq + params.cq_off.head);
    ring.cq_tail = (unsigned *)(cq + params.cq_off.tail);
    ring.cq_mask = *(unsigned *)(cq + params.cq_off.ring_mask);
    ring.cqes = (struct io_uring_cqe *)(cq + params.cq_off.cqes);
}

// --- provided buffers ----------------------------------------------------------------------------

static char *buffer_memory;
static struct io_uring_buf_ring *buffer_ring;
static uint16_t buffer_ring_tail;           // ours; published to the kernel once per turn
static unsigned buffers_out;                // handed to us by the kernel and not yet given back
static uint16_t buffer_next[BUFFER_COUNT];  // the per-connection send queues, linked by buffer id
static uint32_t buffer_length[BUFFER_COUNT];

static void give_back(uint16_t id) {
    // Only addr, len and bid: the `resv` of slot 0 is where the kernel keeps reading the tail.
    struct io_uring_buf *slot = &buffer_ring->bufs[buffer_ring_tail & (BUFFER_COUNT - 1)];
    slot->addr = (uint64_t)(uintptr_t)(buffer_memory + (size_t)id * BUFFER_SIZE);
    slot->len = BUFFER_SIZE;
    slot->bid = id;
    buffer_ring_tail++;
    buffers_out--;
}

static void publish_buffers(void) {
    __atomic_store_n(&buffer_ring->tail, buffer_ring_tail, __ATOMIC_RELEASE);
}

static void setup_buffers(void) {
    buffer_memory = map_or_die((size_t)BUFFER_COUNT * BUFFER_SIZE, -1, 0);
    buffer_ring = map_or_die(BUFFER_COUNT * sizeof(struct io_uring_buf), -1, 0); // page-aligned
    struct io_uring_buf_reg registration = {
        .ring_addr = (uint64_t)(uintptr_t)buffer_ring, .ring_entries = BUFFER_COUNT, .bgid = BUFFER_GROUP,
    };
    if (syscall(__NR_io_uring_register, ring.fd, IORING_REGISTER_PBUF_RING, &registration, 1) < 0) {
        perror("io_uring_register(PBUF_RING)");
        exit(1);
    }
    buffers_out = BUFFER_COUNT;
    for (unsigned id = 0; id < BUFFER_COUNT; id++) give_back((uint16_t)id);
    publish_buffers();
}

// --- submissions ---------------------------------------------------------------------------------

static unsigned unsubmitted(void) {
    return ring.sq_local_tail - __atomic_load_n(ring.sq_head, __ATOMIC_ACQUIRE);
}

static void publish_submissions(void) {
    publish_buffers();
    __atomic_store_n(ring.sq_tail, ring.sq_local_tail, __ATOMIC_RELEASE);
}

static struct io_uring_sqe *next_sqe(void) {
    // A full queue is submitted at once, without waiting; rare with SQ_ENTRIES per turn.
    while (unsubmitted() >= ring.sq_entries) {
        publish_submissions();
        if (ring_enter(unsubmitted(), 0, 0) < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY) {
            perror("io_uring_enter");
            exit(1);
        }
    }
    struct io_uring_sqe *sqe = &ring.sqes[ring.sq_local_tail & ring.sq_mask];
    memset(sqe, 0, sizeof *sqe);
    ring.sq_local_tail++;
    return sqe;
}

// --- connections ---------------------------------------------------------------------------------

struct connection {
    uint32_t generation;
    uint8_t open;
    uint8_t recv_armed;   // a multishot recv is live: a completion without F_MORE is still due
    uint8_t cancel_sent;  // that recv has been asked to stop
    uint8_t send_busy;    // a send is in flight
    uint8_t starved;      // its recv ended with ENOBUFS; it waits in the starved list
    uint8_t peer_done;    // the peer closed its side: send what is queued, then close
    uint8_t failed;       // an error: drop what is queued, close once nothing is in flight
    uint16_t head, tail;  // buffers waiting to be sent, oldest first
    uint32_t head_sent;   // bytes of `head` already sent
    uint32_t queued;
    int starved_prev, starved_next;
};

static struct connection *connections; // indexed by fd
static size_t connection_capacity;
static int starved_first = NONE, starved_last = NONE;
static int listener;
static uint8_t accept_armed, accept_paused;
static volatile sig_atomic_t stopping;

static void on_signal(int signal_number) { (void)signal_number; stopping = 1; }

static struct connection *lookup(int fd, uint32_t generation) {
    if (fd < 0 || (size_t)fd >= connection_capacity) return NULL;
    struct connection *c = &connections[fd];
    return c->open && (c->generation & 0xFFFFFF) == generation ? c : NULL;
}

static void arm_accept(void) {
    struct io_uring_sqe *sqe = next_sqe();
    sqe->opcode = IORING_OP_ACCEPT;
    sqe->fd = listener;
    sqe->ioprio = IORING_ACCEPT_MULTISHOT;
    sqe->accept_flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
    sqe->user_data = tag(OP_ACCEPT, listener, 0);
    accept_armed = 1;
}

static void arm_recv(int fd, struct connection *c) {
    struct io_uring_sqe *sqe = next_sqe();
    sqe->opcode = IORING_OP_RECV;
    sqe->fd = fd;
    sqe->flags = IOSQE_BUFFER_SELECT;
    sqe->buf_group = BUFFER_GROUP;
    sqe->ioprio = IORING_RECV_MULTISHOT;
    sqe->user_data = tag(OP_RECV, fd, c->generation);
    c->recv_armed = 1;
    c->cancel_sent = 0;
}

// Submissions are taken in order, so a cancel queued before a later re-arm of the same connection
// runs first and cannot hit the new recv.
static void cancel_recv(int fd, struct connection *c) {
    if (!c->recv_armed || c->cancel_sent) return;
    struct io_uring_sqe *sqe = next_sqe();
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->fd = -1;
    sqe->addr = tag(OP_RECV, fd, c->generation);
    sqe->flags = IOSQE_CQE_SKIP_SUCCESS; // the recv's own last completion says it is over
    sqe->user_data = tag(OP_CANCEL, fd, c->generation);
    c->cancel_sent = 1;
}

static void start_send(int fd, struct connection *c) {
    uint16_t id = c->head;
    struct io_uring_sqe *sqe = next_sqe();
    sqe->opcode = IORING_OP_SEND;
    sqe->fd = fd;
    sqe->addr = (uint64_t)(uintptr_t)(buffer_memory + (size_t)id * BUFFER_SIZE + c->head_sent);
    sqe->len = buffer_length[id] - c->head_sent;
    sqe->msg_flags = MSG_NOSIGNAL;
    sqe->user_data = tag(OP_SEND, fd, c->generation);
    c->send_busy = 1;
}

static void enqueue(struct connection *c, uint16_t id, uint32_t length) {
    buffer_length[id] = length;
    buffer_next[id] = NO_BUFFER;
    if (c->queued++) buffer_next[c->tail] = id;
    else c->head = id, c->head_sent = 0;
    c->tail = id;
}

static void dequeue(struct connection *c) {
    uint16_t id = c->head;
    c->head = buffer_next[id];
    c->head_sent = 0;
    c->queued--;
    give_back(id);
}

static void starve(int fd, struct connection *c) {
    c->starved = 1;
    c->starved_prev = starved_last;
    c->starved_next = NONE;
    if (starved_last != NONE) connections[starved_last].starved_next = fd;
    else starved_first = fd;
    starved_last = fd;
}

static void unstarve(struct connection *c) {
    if (c->starved_prev != NONE) connections[c->starved_prev].starved_next = c->starved_next;
    else starved_first = c->starved_next;
    if (c->starved_next != NONE) connections[c->starved_next].starved_prev = c->starved_prev;
    else starved_last = c->starved_prev;
    c->starved = 0;
}

// Decides what a connection needs next, after any of its completions: close it once nothing of it
// is in flight, or re-arm its recv.
static void settle(int fd, struct connection *c) {
    if (c->failed || c->peer_done) {
        if (c->failed) cancel_recv(fd, c);
        if (c->recv_armed || c->send_busy) return;
        if (!c->failed && c->queued) return;
        while (c->queued) dequeue(c);
        if (c->starved) unstarve(c);
        c->open = 0;
        close(fd);
        if (accept_paused) {
            accept_paused = 0;
            if (!accept_armed) arm_accept();
        }
        return;
    }
    if (!c->recv_armed && !c->starved && c->queued <= QUEUE_LIMIT / 2) arm_recv(fd, c);
}

static void on_accept(int result, unsigned flags) {
    if (!(flags & IORING_CQE_F_MORE)) accept_armed = 0;
    if (result >= 0) {
        int fd = result;
        if ((size_t)fd >= connection_capacity) {
            size_t capacity = connection_capacity ? connection_capacity : 1024;
            while (capacity <= (size_t)fd) capacity *= 2;
            struct connection *grown = realloc(connections, capacity * sizeof *connections);
            if (!grown) { close(fd); return; }
            memset(grown + connection_capacity, 0, (capacity - connection_capacity) * sizeof *grown);
            connections = grown;
            connection_capacity = capacity;
        }
        struct connection *c = &connections[fd];
        uint32_t generation = c->generation + 1;
        *c = (struct connection){ .generation = generation, .open = 1, .head = NO_BUFFER, .tail = NO_BUFFER,
                                  .starved_prev = NONE, .starved_next = NONE };
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        arm_recv(fd, c);
    } else if (result == -EMFILE || result == -ENFILE || result == -ENOMEM || result == -ENOBUFS) {
        accept_paused = 1; // out of descriptors or memory: accept again when a connection closes
    }
    if (!accept_armed && !accept_paused && !stopping) arm_accept();
}

static void on_recv(int fd, uint32_t generation, int result, unsigned flags) {
    int has_buffer = (flags & IORING_CQE_F_BUFFER) != 0;
    uint16_t id = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
    if (has_buffer) buffers_out++;
    struct connection *c = lookup(fd, generation);
    if (!c) { if (has_buffer) give_back(id); return; } // not expected: closes wait for the last recv completion
    if (!(flags & IORING_CQE_F_MORE)) c->recv_armed = 0, c->cancel_sent = 0;
    if (result > 0 && has_buffer) {
        if (c->failed) {
            give_back(id);
        } else {
            enqueue(c, id, (uint32_t)result);
            if (!c->send_busy) start_send(fd, c);
            if (c->queued >= QUEUE_LIMIT) cancel_recv(fd, c);
        }
    } else {
        if (has_buffer) give_back(id);
        if (result == -ENOBUFS) {
            if (!c->recv_armed && !c->starved) starve(fd, c);
        } else if (result == 0) {
            c->peer_done = 1;
        } else if (result != -ECANCELED) {
            c->failed = 1; // ECONNRESET and the like
        }
    }
    settle(fd, c);
}

static void on_send(int fd, uint32_t generation, int result) {
    struct connection *c = lookup(fd, generation);
    if (!c) return;
    c->send_busy = 0;
    if (result <= 0) {
        c->failed = 1; // EPIPE, ECONNRESET; 0 would mean no progress at all
    } else {
        c->head_sent += (uint32_t)result;
        if (c->head_sent == buffer_length[c->head]) dequeue(c);
        if (c->queued && !c->failed) start_send(fd, c); // the rest of a short send, or the next buffer
    }
    settle(fd, c);
}

static void on_cancel_failed(int fd, uint32_t generation) {
    // ENOENT or EALREADY: the recv was ending anyway. Allow another attempt if it still runs.
    struct connection *c = lookup(fd, generation);
    if (c) c->cancel_sent = 0;
}

// Re-arms the recvs that ran out of buffers, oldest first, at most one per buffer now in the ring.
static void rearm_starved(void) {
    unsigned available = BUFFER_COUNT - buffers_out;
    while (starved_first != NONE && available > 0) {
        int fd = starved_first;
        struct connection *c = &connections[fd];
        unstarve(c);
        settle(fd, c);
        available--;
    }
}

static void reap(void) {
    unsigned head = *ring.cq_head; // only we write it
    unsigned tail = __atomic_load_n(ring.cq_tail, __ATOMIC_ACQUIRE);
    while (head != tail) {
        struct io_uring_cqe cqe = ring.cqes[head & ring.cq_mask];
        head++;
        __atomic_store_n(ring.cq_head, head, __ATOMIC_RELEASE); // the slot is free from here on
        unsigned op = (unsigned)(cqe.user_data >> 56);
        int fd = (int)(uint32_t)cqe.user_data;
        uint32_t generation = (uint32_t)(cqe.user_data >> 32) & 0xFFFFFF;
        switch (op) {
        case OP_ACCEPT: on_accept(cqe.res, cqe.flags); break;
        case OP_RECV: on_recv(fd, generation, cqe.res, cqe.flags); break;
        case OP_SEND: on_send(fd, generation, cqe.res); break;
        case OP_CANCEL: on_cancel_failed(fd, generation); break;
        }
        if (head == tail) tail = __atomic_load_n(ring.cq_tail, __ATOMIC_ACQUIRE);
    }
}

static int listen_on(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { perror("socket"); exit(1); }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) { perror("bind"); exit(1); }
    if (listen(fd, 4096) < 0) { perror("listen"); exit(1); }
    return fd;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: uring_echo PORT\n"); return 64; }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction action = { .sa_handler = on_signal }; // no SA_RESTART: the wait returns EINTR
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);

    listener = listen_on(atoi(argv[1]));
    setup_ring();
    setup_buffers();
    arm_accept();

    while (!stopping) {
        reap();
        rearm_starved();
        publish_submissions();
        // One system call a turn: submit everything queued and wait for at least one completion.
        // GETEVENTS also moves completions that overflowed the CQ ring back into it; when the kernel
        // says some did, do not wait for new ones.
        unsigned overflowed = __atomic_load_n(ring.sq_flags, __ATOMIC_RELAXED) & IORING_SQ_CQ_OVERFLOW;
        if (ring_enter(unsubmitted(), overflowed ? 0 : 1, IORING_ENTER_GETEVENTS) < 0) {
            // EINTR: a signal; EAGAIN: no memory for a request just now; EBUSY: overflowed
            // completions could not all be moved into the ring, which reap() makes room for.
            if (errno == EINTR || errno == EAGAIN || errno == EBUSY) continue;
            perror("io_uring_enter");
            return 1;
        }
    }
    // The ring's accept holds the listening socket until the ring's asynchronous teardown; stop
    // listening now so the port can be bound again at once.
    shutdown(listener, SHUT_RDWR);
    close(listener);
    for (size_t fd = 0; fd < connection_capacity; fd++)
        if (connections[fd].open) close((int)fd);
    close(ring.fd);
    return 0;
}
