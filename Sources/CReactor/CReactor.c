#define _GNU_SOURCE
#include "CReactor.h"
#include <pthread.h>

_Thread_local void *creactor_current_loop = 0;

#include <netdb.h>
const int CREACTOR_EAI_NODATA = EAI_NODATA;

#ifdef __linux__
const short CREACTOR_POLLRDHUP = POLLRDHUP;

int creactor_pipe(int fds[2]) {
    return pipe2(fds, O_CLOEXEC | O_NONBLOCK);
}

void creactor_set_thread_name(const char *name) {
    pthread_setname_np(pthread_self(), name);
}
#endif
