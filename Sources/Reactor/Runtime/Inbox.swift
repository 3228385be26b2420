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
    /// Whether the contents changed since the loop last took them. Set under the lock
    /// by every producer, cleared under it by the loop, and read by the loop without
    /// it: a turn that finds nothing takes no lock.
    let hasNews = Atomic<Bool>(false)

    /// Adds a job and wakes the loop if nobody else has. Returns false once closed.
    func push(_ item: RunItem, waking backend: any ReactorBackend) -> Bool {
        add(waking: backend) { $0.jobs.append(item) }
    }

    /// Asks the loop to cancel a timer that a task on another thread gave up on.
    func pushCancelledTimer(_ id: TimerID, waking backend: any ReactorBackend) {
        _ = add(waking: backend) { $0.cancelledTimers.append(id) }
    }

    /// Asks the loop to stop, and to resume `waiter` once it has. Returns false if the
    /// loop has stopped already.
    func pushShutDown(resuming waiter: UnsafeContinuation<Void, Never>, waking backend: any ReactorBackend) -> Bool {
        add(waking: backend) { contents in
            contents.isShuttingDown = true
            contents.shutDownWaiters.append(waiter)
        }
    }

    /// Loop thread: runs `body` on the contents if anything changed since the last call,
    /// or if a shutdown was asked.
    func take<Result>(otherwise nothing: Result, _ body: (inout Contents) -> Result) -> Result {
        // Sequentially consistent with the producers' stores, for the same reason as
        // `wakeIfNeeded`: the loop's last look before it blocks sees their news.
        guard hasNews.load(ordering: .sequentiallyConsistent) else { return nothing }
        return contents.withLock { contents in
            // A shutdown request stays news until the loop stops: the look that took it
            // may be one that cannot act on it, the last before the loop blocks.
            defer { hasNews.store(contents.isShuttingDown, ordering: .relaxed) }
            return body(&contents)
        }
    }

    private func add(waking backend: any ReactorBackend, _ body: (inout Contents) -> Void) -> Bool {
        let accepted = contents.withLock { contents in
            guard !contents.isClosed else { return false }
            body(&contents)
            // Already true means the loop has not taken since (it clears this under the
            // lock): a streaming producer leaves the line the loop reads alone.
            if !hasNews.load(ordering: .relaxed) { hasNews.store(true, ordering: .sequentiallyConsistent) }
            return true
        }
        if accepted { wakeIfNeeded(backend) }
        return accepted
    }

    // Sequentially consistent with the loop's store of false before it blocks: either
    // the loop's last look at the inbox sees this item, or this load sees false. The
    // load first: while the loop is awake, producers only read the flag's line.
    func wakeIfNeeded(_ backend: any ReactorBackend) {
        guard !wakePending.load(ordering: .sequentiallyConsistent) else { return }
        if !wakePending.exchange(true, ordering: .sequentiallyConsistent) { backend.wake() }
    }
}
