#define _GNU_SOURCE
#include "CReactor.h"
#include <pthread.h>
#include <sys/socket.h>

_Thread_local void *creactor_current_loop = 0;

// The runtime's signatures (`swift/Runtime/Concurrency.h`): a record's handler takes its
// context in the Swift context register.
typedef void (*creactor_swift_handler)(void *__attribute__((swift_context))) __attribute__((swiftcall));
extern void *swift_task_addCancellationHandler(creactor_swift_handler handler, void *context)
    __attribute__((swiftcall));
extern void swift_task_removeCancellationHandler(void *record) __attribute__((swiftcall));
extern void *swift_task_getCurrent(void) __attribute__((swiftcall));
extern _Bool swift_task_isCancelled(void *task) __attribute__((swiftcall));

__attribute__((swiftcall))
static void creactor_cancellation_fired(void *__attribute__((swift_context)) context) {
    creactor_task_cancelled(context);
}

void *creactor_task_add_cancellation(void *context) {
    return swift_task_addCancellationHandler(creactor_cancellation_fired, context);
}

void creactor_task_remove_cancellation(void *record) {
    swift_task_removeCancellationHandler(record);
}

bool creactor_task_is_cancelled(void) {
    void *task = swift_task_getCurrent();
    return task && swift_task_isCancelled(task);
}

#include <netdb.h>
const int CREACTOR_EAI_NODATA = EAI_NODATA;

#ifdef __linux__
const short CREACTOR_POLLRDHUP = POLLRDHUP;

int creactor_pipe(int fds[2]) {
    return pipe2(fds, O_CLOEXEC | O_NONBLOCK);
}

int creactor_accept(int fd, struct sockaddr *address, uint32_t *length) {
    _Static_assert(sizeof(socklen_t) == sizeof(uint32_t), "socklen_t is 32 bits");
    return accept4(fd, address, (socklen_t *)length, SOCK_CLOEXEC | SOCK_NONBLOCK);
}

int creactor_peer_credentials(int fd, int32_t *pid, uint32_t *uid, uint32_t *gid) {
    struct ucred credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == -1) return -1;
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}

void creactor_set_thread_name(const char *name) {
    pthread_setname_np(pthread_self(), name);
}

#include <stddef.h>
const size_t CREACTOR_MMSGHDR_SIZE = sizeof(struct mmsghdr);
const size_t CREACTOR_MMSGHDR_LENGTH_OFFSET = offsetof(struct mmsghdr, msg_len);

int creactor_sendmmsg(int fd, struct mmsghdr *messages, unsigned int count, int flags) {
    return sendmmsg(fd, messages, count, flags);
}

int creactor_recvmmsg(int fd, struct mmsghdr *messages, unsigned int count, int flags) {
    return recvmmsg(fd, messages, count, flags, NULL);
}
#endif

#ifdef __linux__
#include <linux/io_uring.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

// Incremental consumption of provided buffers (Linux 6.12): the kernel ABI values, absent
// from older <linux/io_uring.h>. IOU_PBUF_RING_INC is an enum constant where it exists,
// which the preprocessor cannot see, so both follow the flag's macro from the same release.
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4)
#define IOU_PBUF_RING_INC 2
#endif

// IORING_REGISTER_PBUF_STATUS (Linux 6.8) and its argument, `struct io_uring_buf_status`:
// the kernel ABI, absent from older <linux/io_uring.h>.
#define CREACTOR_IORING_REGISTER_PBUF_STATUS 26
struct creactor_buf_status {
    uint32_t buf_group;
    uint32_t head;
    uint32_t resv[8];
};

/// `struct io_uring_buf_reg` as Linux 6.12 lays it out: older headers call `flags` `pad`.
struct creactor_buf_reg {
    uint64_t ring_addr;
    uint32_t ring_entries;
    uint16_t bgid;
    uint16_t flags;
    uint64_t resv[3];
};

_Static_assert(sizeof(creactor_sqe) == sizeof(struct io_uring_sqe), "sqe size");
_Static_assert(offsetof(creactor_sqe, ioprio) == offsetof(struct io_uring_sqe, ioprio), "sqe ioprio");
_Static_assert(offsetof(creactor_sqe, off) == offsetof(struct io_uring_sqe, off), "sqe off");
_Static_assert(offsetof(creactor_sqe, addr) == offsetof(struct io_uring_sqe, addr), "sqe addr");
_Static_assert(offsetof(creactor_sqe, len) == offsetof(struct io_uring_sqe, len), "sqe len");
_Static_assert(offsetof(creactor_sqe, op_flags) == offsetof(struct io_uring_sqe, rw_flags), "sqe flags");
_Static_assert(offsetof(creactor_sqe, user_data) == offsetof(struct io_uring_sqe, user_data), "sqe user_data");
_Static_assert(offsetof(creactor_sqe, buf_group) == offsetof(struct io_uring_sqe, buf_group), "sqe buf_group");
_Static_assert(offsetof(creactor_sqe, file_index) == offsetof(struct io_uring_sqe, file_index), "sqe file_index");
_Static_assert(offsetof(creactor_sqe, addr3) == offsetof(struct io_uring_sqe, addr3), "sqe addr3");
_Static_assert(sizeof(creactor_cqe) == sizeof(struct io_uring_cqe), "cqe size");
_Static_assert(sizeof(creactor_buffer_entry) == sizeof(struct io_uring_buf), "buffer entry size");
_Static_assert(offsetof(creactor_buffer_entry, tail) == offsetof(struct io_uring_buf_ring, tail), "buffer ring tail");
_Static_assert(offsetof(creactor_cqe, res) == offsetof(struct io_uring_cqe, res), "cqe res");
_Static_assert(offsetof(creactor_cqe, flags) == offsetof(struct io_uring_cqe, flags), "cqe flags");
_Static_assert(sizeof(struct creactor_buf_reg) == sizeof(struct io_uring_buf_reg), "buffer ring registration size");
_Static_assert(offsetof(struct creactor_buf_reg, ring_entries) == offsetof(struct io_uring_buf_reg, ring_entries), "registration entries");
_Static_assert(offsetof(struct creactor_buf_reg, bgid) == offsetof(struct io_uring_buf_reg, bgid), "registration group");
_Static_assert(offsetof(struct creactor_buf_reg, resv) == offsetof(struct io_uring_buf_reg, resv), "registration reserved");

const uint32_t CREACTOR_IORING_SETUP_SINGLE_ISSUER = IORING_SETUP_SINGLE_ISSUER;
const uint32_t CREACTOR_IORING_SETUP_DEFER_TASKRUN = IORING_SETUP_DEFER_TASKRUN;
const uint32_t CREACTOR_IORING_SETUP_COOP_TASKRUN = IORING_SETUP_COOP_TASKRUN;
const uint32_t CREACTOR_IORING_SETUP_SUBMIT_ALL = IORING_SETUP_SUBMIT_ALL;
const uint32_t CREACTOR_IORING_SETUP_R_DISABLED = IORING_SETUP_R_DISABLED;
const uint32_t CREACTOR_IORING_SETUP_TASKRUN_FLAG = IORING_SETUP_TASKRUN_FLAG;
const uint32_t CREACTOR_IORING_FEAT_NODROP = IORING_FEAT_NODROP;
const uint32_t CREACTOR_IORING_FEAT_EXT_ARG = IORING_FEAT_EXT_ARG;
const uint32_t CREACTOR_IORING_ENTER_GETEVENTS = IORING_ENTER_GETEVENTS;
const uint32_t CREACTOR_IORING_SQ_CQ_OVERFLOW = IORING_SQ_CQ_OVERFLOW;
const uint32_t CREACTOR_IORING_SQ_TASKRUN = IORING_SQ_TASKRUN;
const uint32_t CREACTOR_IORING_CQE_F_MORE = IORING_CQE_F_MORE;
const uint32_t CREACTOR_IORING_CQE_F_BUFFER = IORING_CQE_F_BUFFER;
const uint32_t CREACTOR_IORING_CQE_F_BUF_MORE = IORING_CQE_F_BUF_MORE;
const uint16_t CREACTOR_IOU_PBUF_RING_INC = IOU_PBUF_RING_INC;
const uint32_t CREACTOR_IORING_POLL_ADD_MULTI = IORING_POLL_ADD_MULTI;
const uint32_t CREACTOR_IORING_ASYNC_CANCEL_ANY = IORING_ASYNC_CANCEL_ANY;
const uint32_t CREACTOR_IORING_ASYNC_CANCEL_ALL = IORING_ASYNC_CANCEL_ALL;
const uint32_t CREACTOR_IORING_REGISTER_ENABLE_RINGS = IORING_REGISTER_ENABLE_RINGS;
const uint8_t CREACTOR_IORING_OP_POLL_ADD = IORING_OP_POLL_ADD;
const uint8_t CREACTOR_IORING_OP_ASYNC_CANCEL = IORING_OP_ASYNC_CANCEL;
const uint8_t CREACTOR_IORING_OP_READ = IORING_OP_READ;
const uint8_t CREACTOR_IORING_OP_WRITE = IORING_OP_WRITE;
const uint8_t CREACTOR_IORING_OP_SEND = IORING_OP_SEND;
const uint8_t CREACTOR_IORING_OP_RECV = IORING_OP_RECV;
const uint8_t CREACTOR_IORING_OP_ACCEPT = IORING_OP_ACCEPT;
const uint8_t CREACTOR_IORING_OP_CONNECT = IORING_OP_CONNECT;
const uint8_t CREACTOR_IORING_OP_SENDMSG = IORING_OP_SENDMSG;
const uint8_t CREACTOR_IORING_OP_RECVMSG = IORING_OP_RECVMSG;
const uint8_t CREACTOR_IORING_OP_CLOSE = IORING_OP_CLOSE;
const uint16_t CREACTOR_IORING_ACCEPT_MULTISHOT = IORING_ACCEPT_MULTISHOT;
const uint16_t CREACTOR_IORING_RECV_MULTISHOT = IORING_RECV_MULTISHOT;
const uint8_t CREACTOR_IOSQE_BUFFER_SELECT = IOSQE_BUFFER_SELECT;
const uint32_t CREACTOR_IORING_CQE_BUFFER_SHIFT = IORING_CQE_BUFFER_SHIFT;

int creactor_uring_setup(uint32_t entries, uint32_t cq_entries, uint32_t flags, creactor_uring *ring) {
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    params.flags = flags;
    if (cq_entries != 0) {
        params.flags |= IORING_SETUP_CQSIZE;
        params.cq_entries = cq_entries;
    }
    int fd = (int)syscall(__NR_io_uring_setup, entries, &params);
    if (fd < 0) return -errno;

    size_t sq_size = params.sq_off.array + params.sq_entries * sizeof(uint32_t);
    size_t cq_size = params.cq_off.cqes + params.cq_entries * sizeof(struct io_uring_cqe);
    int single = (params.features & IORING_FEAT_SINGLE_MMAP) != 0;
    if (single && cq_size > sq_size) sq_size = cq_size;
    void *sq = mmap(NULL, sq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    if (sq == MAP_FAILED) {
        int error = errno;
        close(fd);
        return -error;
    }
    void *cq = sq;
    if (!single) {
        cq = mmap(NULL, cq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
        if (cq == MAP_FAILED) {
            int error = errno;
            munmap(sq, sq_size);
            close(fd);
            return -error;
        }
    }
    size_t sqes_size = params.sq_entries * sizeof(struct io_uring_sqe);
    void *sqes = mmap(NULL, sqes_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (sqes == MAP_FAILED) {
        int error = errno;
        if (cq != sq) munmap(cq, cq_size);
        munmap(sq, sq_size);
        close(fd);
        return -error;
    }
    char *sq_base = sq, *cq_base = cq;
    ring->fd = fd;
    ring->features = params.features;
    ring->sq_entries = params.sq_entries;
    ring->sq_mask = *(uint32_t *)(sq_base + params.sq_off.ring_mask);
    ring->cq_entries = params.cq_entries;
    ring->cq_mask = *(uint32_t *)(cq_base + params.cq_off.ring_mask);
    ring->sq_head = (uint32_t *)(sq_base + params.sq_off.head);
    ring->sq_tail = (uint32_t *)(sq_base + params.sq_off.tail);
    ring->sq_flags = (uint32_t *)(sq_base + params.sq_off.flags);
    ring->sq_array = (uint32_t *)(sq_base + params.sq_off.array);
    ring->sqes = sqes;
    ring->cq_head = (uint32_t *)(cq_base + params.cq_off.head);
    ring->cq_tail = (uint32_t *)(cq_base + params.cq_off.tail);
    ring->cqes = (creactor_cqe *)(cq_base + params.cq_off.cqes);
    ring->sq_ring = sq;
    ring->sq_ring_size = sq_size;
    ring->cq_ring = cq;
    ring->cq_ring_size = single ? 0 : cq_size;
    ring->sqes_size = sqes_size;
    return 0;
}

void creactor_uring_close(creactor_uring *ring) {
    munmap(ring->sqes, ring->sqes_size);
    if (ring->cq_ring != ring->sq_ring) munmap(ring->cq_ring, ring->cq_ring_size);
    munmap(ring->sq_ring, ring->sq_ring_size);
    close(ring->fd);
}

int creactor_uring_enter(int fd, uint32_t to_submit, uint32_t min_complete, uint32_t flags, int64_t timeout_ns) {
    long result;
    if (timeout_ns >= 0) {
        struct __kernel_timespec timeout = {
            .tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000 };
        struct io_uring_getevents_arg arg = { .ts = (uint64_t)(uintptr_t)&timeout };
        result = syscall(__NR_io_uring_enter, fd, to_submit, min_complete,
                         flags | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
    } else {
        result = syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, NULL, 0);
    }
    return result < 0 ? -errno : (int)result;
}

int creactor_uring_register(int fd, uint32_t opcode, void *arg, uint32_t count) {
    long result = syscall(__NR_io_uring_register, fd, opcode, arg, count);
    return result < 0 ? -errno : (int)result;
}
int creactor_uring_register_buffer_ring(int fd, creactor_buffer_entry *entries, uint32_t count, uint16_t group,
                                        uint16_t flags) {
    struct creactor_buf_reg registration;
    memset(&registration, 0, sizeof registration);
    registration.ring_addr = (uint64_t)(uintptr_t)entries;
    registration.ring_entries = count;
    registration.bgid = group;
    registration.flags = flags;
    return creactor_uring_register(fd, IORING_REGISTER_PBUF_RING, &registration, 1);
}

int creactor_uring_unregister_buffer_ring(int fd, uint16_t group) {
    struct creactor_buf_reg registration;
    memset(&registration, 0, sizeof registration);
    registration.bgid = group;
    return creactor_uring_register(fd, IORING_UNREGISTER_PBUF_RING, &registration, 1);
}

int creactor_uring_buffer_ring_head(int fd, uint16_t group) {
    struct creactor_buf_status status;
    memset(&status, 0, sizeof status);
    status.buf_group = group;
    int result = creactor_uring_register(fd, CREACTOR_IORING_REGISTER_PBUF_STATUS, &status, 1);
    return result < 0 ? result : (int)(uint16_t)status.head;
}
#endif
