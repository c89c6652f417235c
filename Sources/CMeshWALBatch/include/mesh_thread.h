// Scheduling of the calling thread (Linux), for the node's own thread.
#ifndef MESH_THREAD_H
#define MESH_THREAD_H

/// Asks the kernel for a slice of `nanoseconds` for the calling thread under its current policy and nice value
/// (`sched_setattr` with `sched_runtime`; Linux 6.12's EEVDF scheduler honours it for normal threads, from 0.1 ms
/// to 100 ms). A thread with a short slice that wakes up runs once the thread on its core has had that much of
/// the core, instead of the default slice (about 1.4 ms on two cores); its share of the CPU is unchanged. Returns
/// 0, or -1 with errno set (older kernels, other systems: nothing changes).
int mesh_thread_request_slice(unsigned long long nanoseconds);

/// Lowers the calling thread to the priority of the journal's background work (nice 10, Linux: for this thread
/// only; an unprivileged thread cannot raise it back): it leaves most of a contended core to the node's thread.
/// Returns 0, or -1 with errno set (the thread then keeps its priority).
int mesh_thread_lower_priority(void);
#endif
