// Pinning a thread to one CPU: sched_setaffinity(2) and its CPU_SET macros need _GNU_SOURCE,
// which Swift's Glibc module does not define.
#pragma once

/// Pins the calling thread to `cpu`. Returns 0, or -1 with errno set.
int affinity_pin_current_thread(int cpu);
