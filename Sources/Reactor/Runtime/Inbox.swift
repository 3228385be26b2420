import DequeModule
import Synchronization

/// Work handed to a loop by other threads, behind one short lock, with one wake-up
/// per burst instead of one per item.
///
/// `wakePending` is true while a wake-up is on its way or the loop is awake and will
/// look at the inbox again before it blocks. Only the producer that flips it from
/// false to true writes to the backend's wake-up descriptor.
struct Inbox: ~Copyable {
    struct Contents: ~Copyable {
        var jobs = Deque<RunItem>()
        var cancelledTimers: [TimerID] = []
        var shutDownWaiters: [UnsafeContinuation<Void, Never>] = []
        /// Set once the loop has run its last job; pushing then fails.
        var isClosed = false
        var isShuttingDown = false
    }

    let contents = Locked(Contents())
    let wakePending = Atomic<Bool>(true)

    /// Adds a job and wakes the loop if nobody else has. Returns false once closed.
    func push(_ item: RunItem, waking backend: any ReactorBackend) -> Bool {
        let accepted = contents.withLock { contents in
            guard !contents.isClosed else { return false }
            contents.jobs.append(item)
            return true
        }
        if accepted { wakeIfNeeded(backend) }
        return accepted
    }

    /// Asks the loop to cancel a timer that a task on another thread gave up on.
    func pushCancelledTimer(_ id: TimerID, waking backend: any ReactorBackend) {
        let accepted = contents.withLock { contents in
            guard !contents.isClosed else { return false }
            contents.cancelledTimers.append(id)
            return true
        }
        if accepted { wakeIfNeeded(backend) }
    }

    // Sequentially consistent with the loop's store of false before it blocks: either
    // the loop's last look at the inbox sees this item, or this exchange sees false.
    func wakeIfNeeded(_ backend: any ReactorBackend) {
        if !wakePending.exchange(true, ordering: .sequentiallyConsistent) { backend.wake() }
    }
}
