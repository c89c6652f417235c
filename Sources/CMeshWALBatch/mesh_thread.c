// See include/mesh_thread.h.
#define _GNU_SOURCE
#include "mesh_thread.h"
#include <errno.h>
#if defined(__linux__)
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel's struct sched_attr (first version, 48 bytes); glibc has no wrapper for sched_setattr. */
struct meshSchedAttr {
    uint32_t size;
    uint32_t policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime;
    uint64_t deadline;
    uint64_t period;
};

int mesh_thread_request_slice(unsigned long long nanoseconds) {
    pid_t tid = (pid_t)syscall(SYS_gettid);
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, (id_t)tid);
    if (nice == -1 && errno != 0) return -1;
    struct meshSchedAttr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.policy = 0; /* SCHED_OTHER: unchanged */
    attr.nice = nice;
    attr.runtime = nanoseconds;
    return (int)syscall(SYS_sched_setattr, 0, &attr, 0);
}

int mesh_thread_lower_priority(void) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
}
#else
int mesh_thread_request_slice(unsigned long long nanoseconds) {
    (void)nanoseconds;
    errno = ENOSYS;
    return -1;
}

int mesh_thread_lower_priority(void) {
    errno = ENOSYS;
    return -1;
}
#endif
