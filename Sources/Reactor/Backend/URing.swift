#if os(Linux)
import CReactor
import SystemPackage

/// One io_uring instance: its submission and completion queues, mapped from the kernel.
///
/// Loop thread only, once set up. Entries are filled in place and published together by
/// ``enter(waitingFor:timeout:)``, so a whole turn of the loop costs one syscall.
struct URing: ~Copyable {
    private var ring = creactor_uring()
    /// The tail as filled here; the kernel's copy lags until the next enter.
    private var localTail: UInt32 = 0
    /// Set up disabled, to be enabled by the thread that will be the only submitter.
    private(set) var needsEnabling: Bool

    /// The setups to try, best first: the kernel refuses flags it does not know with
    /// `EINVAL`, and an older kernel then gets the next one. `TASKRUN_FLAG` came with
    /// `COOP_TASKRUN` (Linux 5.19), so it costs neither setup a kernel.
    private static let setups: [(flags: UInt32, disabled: Bool)] = [
        (CREACTOR_IORING_SETUP_SINGLE_ISSUER | CREACTOR_IORING_SETUP_DEFER_TASKRUN
            | CREACTOR_IORING_SETUP_TASKRUN_FLAG | CREACTOR_IORING_SETUP_SUBMIT_ALL
            | CREACTOR_IORING_SETUP_R_DISABLED, true),
        (CREACTOR_IORING_SETUP_COOP_TASKRUN | CREACTOR_IORING_SETUP_TASKRUN_FLAG
            | CREACTOR_IORING_SETUP_SUBMIT_ALL, false),
        (0, false),
    ]

    /// Sets up a ring with room for `entries` submissions and `completions` completions.
    ///
    /// - Throws: the setup's `Errno` (`ENOSYS` without io_uring, `EPERM` when it is
    ///   disabled or filtered); `ENOTSUP` when the kernel lacks a feature the loop needs
    ///   (a wait with a timeout, and completions kept rather than dropped on overflow).
    init(entries: UInt32, completions: UInt32) throws(Errno) {
        var result: CInt = -EINVAL
        var disabled = false
        for setup in Self.setups where result == -EINVAL {
            result = creactor_uring_setup(entries, completions, setup.flags, &ring)
            disabled = setup.disabled
        }
        guard result == 0 else { throw Errno(rawValue: -result) }
        let needed = CREACTOR_IORING_FEAT_EXT_ARG | CREACTOR_IORING_FEAT_NODROP
        guard ring.features & needed == needed else {
            creactor_uring_close(&ring)
            throw Errno.notSupported
        }
        needsEnabling = disabled
        // Entries are consumed in order, so the indirection array is the identity.
        for index in 0..<ring.sq_entries { ring.sq_array[Int(index)] = index }
        localTail = ring.sq_tail.pointee
    }

    private var isOpen = true

    deinit {
        if isOpen {
            var ring = ring
            creactor_uring_close(&ring)
        }
    }

    /// Unmaps the queues and closes the ring; the kernel cancels what is still in flight.
    mutating func close() {
        guard isOpen else { return }
        isOpen = false
        creactor_uring_close(&ring)
    }

    var descriptor: CInt { ring.fd }

    /// Makes the calling thread the ring's only submitter, if the setup asked for one.
    mutating func enableIfNeeded() throws(Errno) {
        guard needsEnabling else { return }
        let result = creactor_uring_register(ring.fd, CREACTOR_IORING_REGISTER_ENABLE_RINGS, nil, 0)
        guard result >= 0 else { throw Errno(rawValue: -result) }
        needsEnabling = false
    }

    /// The next free submission entry, zeroed, or nil when the queue is full.
    mutating func nextEntry() -> UnsafeMutablePointer<creactor_sqe>? {
        let head = creactor_load_acquire(ring.sq_head)
        guard localTail &- head < ring.sq_entries else { return nil }
        let entry = ring.sqes + Int(localTail & ring.sq_mask)
        entry.initialize(to: creactor_sqe())
        localTail &+= 1
        return entry
    }

    /// Entries filled but not yet taken by the kernel.
    var unsubmitted: UInt32 { localTail &- creactor_load_acquire(ring.sq_head) }

    /// Whether completions are waiting in the queue.
    var hasCompletions: Bool {
        creactor_load_acquire(ring.cq_tail) != ring.cq_head.pointee
    }

    /// Whether the kernel holds completions that it posts only once this thread enters
    /// it (the deferred or cooperative task work of an event that arrived): the next
    /// enter returns at once, with them.
    var hasDeferredCompletions: Bool {
        creactor_load_relaxed(ring.sq_flags) & CREACTOR_IORING_SQ_TASKRUN != 0
    }

    /// Whether the kernel holds completions that did not fit the queue.
    var overflowed: Bool {
        creactor_load_relaxed(ring.sq_flags) & CREACTOR_IORING_SQ_CQ_OVERFLOW != 0
    }

    /// Publishes the filled entries, submits them, and waits until `minimum` completions
    /// are queued or `timeout` passes (nil: no limit). With `minimum` zero it only submits
    /// and runs the kernel's deferred completion work.
    ///
    /// `EINTR` and an expired timeout are not errors: the caller looks at the queue.
    /// `EBUSY` and `EAGAIN` mean the completion queue must be drained first.
    mutating func enter(waitingFor minimum: UInt32, timeout: Duration?) throws(Errno) {
        // Release: the entries' contents are visible before the kernel sees the tail.
        creactor_store_release(ring.sq_tail, localTail)
        let timeoutNanoseconds: Int64 = minimum == 0 ? -1 : timeout.map(Duration.nanoseconds(roundingUp:)) ?? -1
        let result = creactor_uring_enter(
            ring.fd, unsubmitted, minimum, CREACTOR_IORING_ENTER_GETEVENTS, timeoutNanoseconds)
        if result >= 0 || result == -EINTR || result == -ETIME { return }
        throw Errno(rawValue: -result)
    }

    /// Calls `body` with each queued completion, in order, and frees their slots.
    mutating func drainCompletions(_ body: (creactor_cqe) -> Void) {
        var head = ring.cq_head.pointee
        // Acquire: the entries up to the tail are written before the tail moved.
        let tail = creactor_load_acquire(ring.cq_tail)
        while head != tail {
            body(ring.cqes[Int(head & ring.cq_mask)])
            head &+= 1
        }
        // Release: the entries are read before the kernel may reuse their slots.
        creactor_store_release(ring.cq_head, head)
    }
}
#endif
