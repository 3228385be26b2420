/// An event loop's timers: the wheel, in ticks of one millisecond since the loop began,
/// and a pool of waiters for sleeping tasks so that a sleep allocates nothing.
///
/// A waiter returns to the pool only from the task that slept on it, once its park has
/// ended: whoever resumed it (the wheel, a cancelling thread, shutdown) is done with it
/// by then, so the next sleep cannot be handed a waiter still in use.
///
/// Loop thread only.
struct LoopTimers: ~Copyable {
    /// What a timer does when it fires.
    enum Action {
        /// Resume a sleeping task, if its park of that generation is still waiting.
        case resume(Waiter, generation: UInt64)
        /// Run a callback scheduled with ``EventLoop/schedule(at:_:)``.
        case run(() -> Void)
    }

    private(set) var wheel = TimerWheel<Action>()
    private var idleWaiters: [Waiter] = []
    private let origin: UInt64
    /// After shutdown, nothing may be scheduled.
    private(set) var isShutDown = false

    static let nanosecondsPerTick: UInt64 = 1_000_000

    init(origin: LoopClock.Instant) {
        self.origin = origin.nanoseconds
    }

    /// The first tick at or after `instant`: rounding up is what keeps timers from firing early.
    func tick(atOrAfter instant: LoopClock.Instant) -> UInt64 {
        guard instant.nanoseconds > origin else { return 0 }
        let offset = instant.nanoseconds - origin
        return offset / Self.nanosecondsPerTick + (offset % Self.nanosecondsPerTick == 0 ? 0 : 1)
    }

    /// The last tick that has fully begun at `instant`.
    func tick(reachedAt instant: LoopClock.Instant) -> UInt64 {
        instant.nanoseconds > origin ? (instant.nanoseconds - origin) / Self.nanosecondsPerTick : 0
    }

    /// Whether no timer is pending: the loop then reads no clock for them.
    var isEmpty: Bool { wheel.count == 0 }

    /// How long the loop may block before the next timer is due; nil when none is pending,
    /// and then `now` is not read.
    func timeout(now: @autoclosure () -> LoopClock.Instant) -> Duration? {
        guard let expiry = wheel.nextExpiry else { return nil }
        let now = now()
        let due = origin + expiry * Self.nanosecondsPerTick
        return due > now.nanoseconds ? .nanoseconds(Int64(due - now.nanoseconds)) : .zero
    }

    mutating func schedule(at deadline: LoopClock.Instant, _ action: Action) -> TimerID {
        wheel.schedule(at: tick(atOrAfter: deadline), action)
    }

    /// Cancels a timer that has not fired; a stale ID does nothing.
    mutating func cancel(_ id: TimerID) {
        _ = wheel.cancel(id)
    }

    /// The next timer due at `now`, if any.
    mutating func nextExpired(at now: LoopClock.Instant) -> Action? {
        wheel.nextExpired(at: tick(reachedAt: now))
    }

    /// A waiter for a sleeping task, from the pool if it has one.
    mutating func takeWaiter() -> Waiter {
        idleWaiters.popLast() ?? Waiter()
    }

    /// Gives back the waiter of a sleep whose park has ended.
    mutating func recycle(_ waiter: Waiter) {
        idleWaiters.append(waiter)
    }

    /// Refuses new timers and hands back every pending one.
    mutating func shutDown() -> [Action] {
        isShutDown = true
        return wheel.removeAll()
    }
}
