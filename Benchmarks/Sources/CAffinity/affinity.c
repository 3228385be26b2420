#define _GNU_SOURCE
#include <sched.h>

#include "affinity.h"

int affinity_pin_current_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    // Thread 0 is the calling thread.
    return sched_setaffinity(0, sizeof set, &set);
}
