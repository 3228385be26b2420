// What the timer, wake-up and task workloads need from an event loop. Reactor and SwiftNIO each get
// an adapter of a few lines (reactor-loop, nio-loop), so that both run the very same workload.

/// An event loop with one thread, timers, a cross-thread `execute`, and tasks that run on it.
public protocol LoopUnderTest: Sendable {
    associatedtype Deadline
    associatedtype Timer

    /// Runs `body` on the loop's thread; callable from any thread.
    func execute(_ body: @escaping @Sendable () -> Void)

    /// The loop's current time, as its timers see it. On the loop's thread.
    func now() -> Deadline

    /// `base` plus `milliseconds`.
    func deadline(_ base: Deadline, plusMilliseconds milliseconds: Int) -> Deadline

    /// A timer that runs `body` on the loop at `deadline`. On the loop's thread.
    func schedule(at deadline: Deadline, _ body: @escaping @Sendable () -> Void) -> Timer

    /// Cancels `timer` if it has not run. On the loop's thread.
    func cancel(_ timer: Timer)

    /// Starts a task whose `body` runs on the loop's thread, isolated to what it is given
    /// (nil: nonisolated, on a loop that is the task's executor).
    func startTask(_ body: @escaping @Sendable (isolated (any Actor)?) async -> Void)
}
