import CReactor
import DequeModule
import Synchronization

/// One OS thread that owns one reactor and runs Swift jobs: a `TaskExecutor` and a
/// `SerialExecutor`.
///
/// Run a task on a loop with `Task(executorPreference: loop) { ... }` or inside
/// `withTaskExecutorPreference(loop) { ... }`. Its I/O and timers then complete on this
/// thread: when a descriptor becomes ready, the reactor resumes the task straight into
/// the local run queue, with no thread hop and no allocation. Jobs enqueued from other
/// threads go through an inbox with one wake-up per burst.
///
/// Each turn of the loop runs at most ``jobBudget`` jobs, then takes the inbox, then
/// waits for I/O (without blocking if work remains), then fires due timers.
///
/// Loops come from an ``EventLoopGroup``; shutting the group down resumes every task
/// still waiting on a loop with ``ReactorError/loopShutDown``.
public final class EventLoop: TaskExecutor, SerialExecutor, @unchecked Sendable {
    // `@unchecked Sendable`: the stored properties below the divider are touched only
    // on the loop's own thread (checked by `isCurrent` where it is not obvious); the
    // rest are immutable, locked (`inbox`) or atomic.

    /// The backend this loop waits on: the one asked for, or epoll where io_uring was
    /// asked for and the kernel refused it.
    public let backend: BackendKind
    /// This loop's clock: sleeps on it are timers of this loop.
    public var clock: LoopClock { LoopClock(loop: self) }
    /// The most jobs run in one turn before the loop polls I/O again.
    public let jobBudget = 128

    let reactor: Reactor
    /// The reactor's completion backend, if it has one, held directly: reached through
    /// `reactor`, each use of it on a hot path cost a retain and a release.
    let completions: (any CompletionBackend)?
    let inbox = Inbox()
    /// The buffers lent to ``ReceivedChunks`` iterators; touched on this loop's thread only.
    let buffers = BufferPool()

    /// Buffers lent to chunks now: the pool's, and on io_uring the kernel ring's.
    var lentBufferCount: Int {
        buffers.lentCount + (completions?.providedBuffers.inUse ?? 0)
    }
    private let actorExecutor: LoopActorExecutor
    private var taskExecutorReference: UnownedTaskExecutor!
    private var serialExecutorReference: UnownedSerialExecutor!
    private let thread = Locked<LoopThread?>(nil)
    let name: String

    // ---- loop thread only ----
    // `@exclusivity(unchecked)`: a job or a timer runs after its access to the queue or
    // the wheel ended, so no access overlaps another; the runtime's check only costs.
    @exclusivity(unchecked) private var runQueue = Deque<RunItem>()
    @exclusivity(unchecked) var timers: LoopTimers
    private var isStopped = false

    /// Creates a loop on a new thread.
    ///
    /// - Throws: ``IOError`` if the backend or the thread cannot be created.
    init(name: String, backend: BackendKind) throws {
        self.name = name
        do {
            reactor = Reactor(backend: try backend.makeBackend())
        } catch {
            throw IOError(.create, error)
        }
        completions = reactor.completions
        self.backend = reactor.backend.kind
        timers = LoopTimers(origin: .now)
        actorExecutor = LoopActorExecutor()
        actorExecutor.loop = self
        taskExecutorReference = UnownedTaskExecutor(ordinary: self)
        serialExecutorReference = UnownedSerialExecutor(ordinary: actorExecutor)
        runQueue.reserveCapacity(256)
        var started: LoopThread? = try LoopThread(name: name, loop: self)
        thread.withLock { $0 = started.take() }
    }

    /// The loop whose thread is calling, or nil on any other thread.
    public static var current: EventLoop? {
        guard let raw = creactor_get_current_loop() else { return nil }
        return Unmanaged<EventLoop>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Whether the calling thread is this loop's thread.
    public var isCurrent: Bool { creactor_get_current_loop() == Unmanaged.passUnretained(self).toOpaque() }

    /// The loop of the calling thread, or one of the default group's.
    static func currentOrDefault() throws -> EventLoop {
        if let current { return current }
        return try EventLoopGroup.shared.next()
    }

    // MARK: Executor

    /// Enqueues a task's job. Called by the Swift runtime.
    public func enqueue(_ job: consuming ExecutorJob) {
        schedule(RunItem(UnownedJob(job), isActorJob: false))
    }

    /// The task-executor face of this loop, as the Swift runtime refers to it.
    public func asUnownedTaskExecutor() -> UnownedTaskExecutor { taskExecutorReference }

    /// The serial executor that actors use to run on this loop, e.g.
    /// `nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }`.
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor { serialExecutorReference }

    /// Traps unless called on this loop's thread.
    public func checkIsolated() {
        precondition(isCurrent, "expected to run on event loop \(name)")
    }

    /// Runs `body` on this loop's thread, in order with the loop's other jobs.
    ///
    /// Call it from any thread, the loop's own included. Closures handed over by one
    /// thread run in the order it handed them over, behind the jobs it enqueued on this
    /// loop before them. Called on the loop's thread, it queues `body` for a later step
    /// of the turn and never runs it inside the call. Nothing is allocated beyond what
    /// `body` captures; from another thread, a burst of calls wakes the loop once.
    ///
    /// `body` runs exactly once. If this loop has stopped (its group was shut down),
    /// it runs on a loop of ``EventLoopGroup/shared`` instead, the way the jobs of tasks
    /// that outlived their loop do: there ``isCurrent`` is false.
    ///
    /// - Parameter body: the work to run; it must not block the loop.
    public func execute(_ body: @escaping @Sendable () -> Void) {
        schedule(RunItem(.closure(body)))
    }

    /// Loop thread only: whether the loop's next wait will sleep, as far as the loop can
    /// tell: no job waits to run after the current one, and the backend has no work
    /// that makes the wait return at once (submissions to hand over, completions of
    /// events that already arrived). An operation submitted now would then wake that
    /// wait, which sleeps again in a second system call; otherwise it rides along with
    /// the wait's call for free.
    var nextWaitSleeps: Bool { runQueue.isEmpty && !(completions?.hasPendingWork ?? false) }

    func schedule(_ item: RunItem) {
        if isCurrent && !isStopped {
            runQueue.append(item)
        } else if !inbox.push(item, waking: reactor.backend) {
            handOverAfterStop(item)
        }
    }

    /// A job that arrives after this loop stopped (a task that outlived its loop, or a
    /// closure from ``execute(_:)``) runs on a default-group loop, still as a job of this
    /// loop, so that the Swift runtime does not send it straight back here.
    private func handOverAfterStop(_ item: RunItem) {
        let heir: EventLoop
        do {
            heir = try EventLoopGroup.shared.heir(of: self)
        } catch {
            fatalError("event loop \(name) stopped, and no default loop could take its job: \(error)")
        }
        let owner = item.stoppedOwner ?? Unmanaged.passRetained(self)
        heir.schedule(RunItem(item.work, stoppedOwner: owner))
    }

    private func run(_ item: RunItem) {
        // Not `?? self`, which would retain the loop for every job.
        guard let stoppedOwner = item.stoppedOwner else { return run(item.work, as: self) }
        run(item.work, as: stoppedOwner.takeRetainedValue())
    }

    /// Runs `work` on this thread, on the executors of `owner`.
    private func run(_ work: RunItem.Work, as owner: EventLoop) {
        switch work {
        case .task(let job):
            job.runSynchronously(on: owner.taskExecutorReference)
        case .actor(let job):
            job.runSynchronously(isolatedTo: owner.serialExecutorReference, taskExecutor: owner.taskExecutorReference)
        case .closure(let body):
            body()
        }
    }

    // MARK: The loop

    /// The body of the loop's thread.
    func runUntilStopped() {
        while true {
            runJobs()
            let shuttingDown = takeInbox()
            if shuttingDown {
                stop()
                return
            }
            var timeout = runQueue.isEmpty ? timers.timeout(now: .now) : .zero
            let mayBlock = timeout != .zero
            if mayBlock {
                inbox.wakePending.store(false, ordering: .sequentiallyConsistent)
                if takeInbox() || !runQueue.isEmpty { timeout = .zero }
            }
            do {
                try reactor.turn(timeout: timeout)
            } catch {
                // epoll_wait and poll fail only with EBADF, EFAULT or EINVAL here (EINTR
                // is retried): a bug in the loop, not a condition to recover from.
                fatalError("event loop \(name): waiting for events failed: \(error)")
            }
            // Only after a turn that cleared it: a busy loop leaves the flag's line alone.
            if mayBlock { inbox.wakePending.store(true, ordering: .relaxed) }
            fireTimers()
        }
    }

    private func runJobs() {
        var budget = jobBudget
        while budget > 0, let item = runQueue.popFirst() {
            run(item)
            budget -= 1
        }
    }

    /// Moves cross-thread work behind the local run queue and applies timer
    /// cancellations from other threads. Returns true once shutdown was asked.
    private func takeInbox() -> Bool {
        inbox.take(otherwise: false) { contents in
            if !contents.jobs.isEmpty {
                if runQueue.isEmpty {
                    swap(&runQueue, &contents.jobs)
                } else {
                    runQueue.append(contentsOf: contents.jobs)
                    contents.jobs.removeAll(keepingCapacity: true)
                }
            }
            for id in contents.cancelledTimers { timers.cancel(id) }
            contents.cancelledTimers.removeAll(keepingCapacity: true)
            return contents.isShuttingDown
        }
    }

    private func fireTimers() {
        guard !timers.isEmpty else { return }
        let now = LoopClock.Instant.now
        while let action = timers.nextExpired(at: now) {
            switch action {
            case .resume(let waiter, let generation): waiter.resume(generation: generation)
            case .run(let body): body()
            }
        }
    }

    // MARK: Timers

    /// Parks the current task, which runs on this loop's thread, until `deadline`.
    func sleepOnLoop(until deadline: LoopClock.Instant) async throws {
        guard isCurrent, !timers.isShutDown else { throw ReactorError.loopShutDown }
        let waiter = timers.takeWaiter()
        let id = timers.schedule(at: deadline, .resume(waiter, generation: waiter.generation))
        // Whoever wakes the task, it resumes on this loop (its executor), so the pool is
        // touched on the loop's thread only.
        defer { if isCurrent { timers.recycle(waiter) } }
        do {
            try await waiter.park()
        } catch is CancellationError {
            // The timer would find the park over and do nothing; unlinking it now frees
            // its slot in the wheel before its deadline.
            cancelTimer(id)
            throw CancellationError()
        }
    }

    /// Cancels a timer from any thread: at once on the loop, through the inbox elsewhere.
    func cancelTimer(_ id: TimerID) {
        if isCurrent {
            timers.cancel(id)
        } else {
            inbox.pushCancelledTimer(id, waking: reactor.backend)
        }
    }

    /// Runs `body` on this loop's thread, from a task that runs elsewhere.
    ///
    /// - Throws: ``ReactorError/loopShutDown`` if the loop has stopped; what `body` throws.
    func hop<Result: Sendable>(_ body: (EventLoop) async throws -> Result) async throws -> Result {
        try await withTaskExecutorPreference(self) {
            try await body(self)
        }
    }

    /// Runs `body` on this loop at `deadline`, unless cancelled first.
    ///
    /// Scheduling and cancelling are O(1) and allocate nothing beyond what `body`
    /// captures. Call it on this loop's thread (from a task running on the loop, or from
    /// another timer's body); ``ScheduledTimer/cancel()`` works from anywhere.
    ///
    /// - Parameters:
    ///   - deadline: when to run; rounded up to the next millisecond tick.
    ///   - body: runs on the loop's thread. It is dropped unrun if the loop shuts down
    ///     first, or has already (jobs still drain on the loop's thread while it stops).
    /// - Returns: a handle that cancels the timer.
    public func schedule(at deadline: LoopClock.Instant, _ body: @escaping () -> Void) -> ScheduledTimer {
        precondition(isCurrent, "EventLoop.schedule(at:_:) must be called on the loop's thread")
        guard !timers.isShutDown else { return ScheduledTimer(loop: self, id: .none) }
        return ScheduledTimer(loop: self, id: timers.schedule(at: deadline, .run(body)))
    }

    // MARK: Shutdown

    /// Asks the loop to stop and waits until its thread has ended.
    ///
    /// The loop wakes every task waiting on its I/O with ``ReactorError/loopShutDown``,
    /// resumes its sleeping tasks with the same error, drops its pending timer
    /// callbacks, runs what is left in its queues, closes its backend and ends its thread.
    /// Tasks that still prefer the loop afterwards continue on the default group.
    func shutDown() async {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            if !inbox.pushShutDown(resuming: continuation, waking: reactor.backend) { continuation.resume() }
        }
        thread.withLock { thread in
            thread.take()?.join()
        }
    }

    /// Loop thread: wakes every waiter, closes the inbox, and runs once what was queued
    /// before the stop. A job that arrives later, even one a draining job queues for
    /// itself, goes to the heir, so the stop always ends.
    private func stop() {
        // From here on no producer writes the wake-up descriptor, which the backend is
        // about to close: each finds a wake-up already pending.
        inbox.wakePending.store(true, ordering: .sequentiallyConsistent)
        reactor.shutDown()
        for action in timers.shutDown() {
            if case .resume(let waiter, let generation) = action {
                waiter.resume(generation: generation, throwing: ReactorError.loopShutDown)
            }
        }
        let waiters = inbox.contents.withLock { contents in
            contents.isClosed = true
            runQueue.append(contentsOf: contents.jobs)
            contents.jobs.removeAll()
            contents.cancelledTimers.removeAll()
            defer { contents.shutDownWaiters.removeAll() }
            return contents.shutDownWaiters
        }
        isStopped = true
        while let item = runQueue.popFirst() { run(item) }
        buffers.release()
        for waiter in waiters { waiter.resume() }
    }
}

/// The serial-executor face of a loop, for actors that run on it. A separate object
/// so that the loop can tell an actor's job from a plain task's by who received it.
private final class LoopActorExecutor: SerialExecutor, @unchecked Sendable {
    // Set once, right after the loop is built; the loop owns this object.
    unowned(unsafe) var loop: EventLoop!

    func enqueue(_ job: consuming ExecutorJob) {
        loop.schedule(RunItem(UnownedJob(job), isActorJob: true))
    }

    func checkIsolated() {
        loop.checkIsolated()
    }
}

/// A callback timer on an event loop; see ``EventLoop/schedule(at:_:)``.
public struct ScheduledTimer: Sendable {
    let loop: EventLoop
    let id: TimerID

    /// Cancels the timer if it has not run yet; from any thread. A cancelled timer is
    /// unlinked from the wheel at once on the loop's thread, and at the loop's next
    /// turn from elsewhere; it costs nothing when its deadline comes.
    public func cancel() {
        loop.cancelTimer(id)
    }
}
