#define _GNU_SOURCE
#include "CReactor.h"
#include <pthread.h>
#include <sys/socket.h>

_Thread_local void *creactor_current_loop = 0;

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
