import CReactor
import Synchronization

/// One parked task: its continuation, and the atomic word that decides who resumes it.
///
/// The word is `| generation: 61 | state: 3 |`. A park moves `idle → parking → waiting`;
/// the reactor (``notify()``), a timer (``resume(generation:throwing:)``) or the task's
/// cancellation each try to move `waiting → resuming`, and only the one whose
/// compare-and-swap succeeds takes the continuation and resumes the task. The resumed
/// task itself, once it runs, frees the slot: `resuming → idle`, generation bumped. So:
///
/// 1. every park resumes exactly once, from whichever thread wins;
/// 2. a late resume by a timer, still holding the old generation, is a no-op;
/// 3. from its claim until its task runs again, a park is the only one the word can
///    hold, so a cancellation record that names just the waiter reaches that park and no
///    other; a second task that tries to park meanwhile gets ``ReactorError/busy``
///    instead of overwriting a continuation.
///
/// A notification that finds nobody waiting leaves `notified` behind, so a task that
/// was about to park sees it instead of sleeping through the event. One that finds the
/// task `resuming` is dropped: that task looks at the readiness afresh when it runs.
final class Waiter: @unchecked Sendable {
    private enum State: UInt64 {
        case idle = 0
        case waiting = 1
        case notified = 2
        /// Claimed by a task that is storing its continuation.
        case parking = 3
        /// Claimed by the winner that is taking the continuation to resume it.
        case resuming = 4
    }

    private let word = Atomic<UInt64>(0)
    /// Written by the parking task between its `idle → parking` and `parking → waiting`
    /// swaps (release), read and cleared only by the winner of `waiting → resuming` (acquire).
    private var continuation: UnsafeContinuation<Void, any Error>?

    private static func pack(_ generation: UInt64, _ state: State) -> UInt64 {
        generation << 3 | state.rawValue
    }

    private static func unpack(_ word: UInt64) -> (generation: UInt64, state: State) {
        (word >> 3, State(rawValue: word & 7)!)
    }

    /// Whether a task is parked here now (for tests and diagnostics).
    var isWaiting: Bool { Self.unpack(word.load(ordering: .acquiring)).state == .waiting }

    /// The generation the next park will use; a timer records it to resume that park only.
    var generation: UInt64 { Self.unpack(word.load(ordering: .acquiring)).generation }

    /// Suspends the current task until ``notify()``, ``resume(generation:throwing:)`` or
    /// its cancellation. Returns at once, without suspending, if a notification is pending.
    ///
    /// - Parameter arm: runs once the task is parked, before it can be cancelled by a
    ///   flag check.
    /// - Throws: `CancellationError` if the task was cancelled while parked;
    ///   ``ReactorError/busy`` if another task is parked here already.
    nonisolated(nonsending) func park(arm: () -> Void = {}) async throws {
        var current = word.load(ordering: .acquiring)
        var generation: UInt64
        while true {
            let state: State
            (generation, state) = Self.unpack(current)
            switch state {
            case .notified:
                let (taken, seen) = word.compareExchange(
                    expected: current, desired: Self.pack(generation, .idle), ordering: .acquiring)
                if taken { return }
                current = seen
                continue
            case .waiting, .parking, .resuming:
                throw ReactorError.busy
            case .idle:
                // Claim the slot before writing the continuation.
                let (claimed, seen) = word.compareExchange(
                    expected: current, desired: Self.pack(generation, .parking), ordering: .acquiring)
                if !claimed {
                    current = seen
                    continue
                }
            }
            break
        }
        let parked = generation
        // Every way out below leaves `resuming`; the slot is free again only now that the
        // task runs, after its cancellation record is gone.
        defer { word.store(Self.pack(parked &+ 1, .idle), ordering: .releasing) }
        try await whileCancellable(.park(on: self)) {
            // The executor-inheriting form: the isolated one switches to its `isolation`
            // argument first, which costs a runtime lock for a task with an executor
            // preference (see `whileCancellable`) and never moves it.
            try await _unsafeInheritExecutor_withUnsafeThrowingContinuation {
                (continuation: UnsafeContinuation<Void, any Error>) in
                self.continuation = continuation
                let (isParked, _) = word.compareExchange(
                    expected: Self.pack(parked, .parking), desired: Self.pack(parked, .waiting),
                    ordering: .releasing)
                guard isParked else {
                    // notify() turned `parking` into `notified` meanwhile: the task goes on at
                    // once and looks at the readiness again, which that notification set.
                    self.continuation = nil
                    word.store(Self.pack(parked, .resuming), ordering: .relaxed)
                    continuation.resume()
                    return
                }
                arm()
                // A record installed on an already-cancelled task fired before the
                // continuation existed and found nothing to cancel: check once more.
                if creactor_task_is_cancelled() { cancel(generation: parked) }
            }
        }
    }

    /// The cancellation record's target (see ``CancellationTarget``): resumes the park in
    /// progress with `CancellationError`. While the record is installed, that park is its
    /// own task's; one still `parking` checks for cancellation itself once `waiting`.
    func cancelPark() {
        let (generation, state) = Self.unpack(word.load(ordering: .acquiring))
        if state == .waiting { cancel(generation: generation) }
    }

    /// Wakes the parked task, or leaves a notification for the next park.
    func notify() {
        var current = word.load(ordering: .acquiring)
        while true {
            let (generation, state) = Self.unpack(current)
            let desired: UInt64
            switch state {
            // A task being resumed looks at the readiness afresh, which the caller set.
            case .notified, .resuming: return
            case .idle, .parking: desired = Self.pack(generation, .notified)
            case .waiting: desired = Self.pack(generation, .resuming)
            }
            let (done, seen) = word.compareExchange(
                expected: current, desired: desired, ordering: .acquiringAndReleasing)
            if done {
                if state == .waiting { takeContinuation().resume() }
                return
            }
            current = seen
        }
    }

    /// Resumes the park of `generation` if it is still waiting, with `error` if given.
    /// Returns false if that park already ended (it was cancelled).
    @discardableResult
    func resume(generation: UInt64, throwing error: (any Error)? = nil) -> Bool {
        guard win(generation: generation) else { return false }
        let continuation = takeContinuation()
        if let error { continuation.resume(throwing: error) } else { continuation.resume() }
        return true
    }

    private func cancel(generation: UInt64) {
        guard win(generation: generation) else { return }
        takeContinuation().resume(throwing: CancellationError())
    }

    private func win(generation: UInt64) -> Bool {
        word.compareExchange(
            expected: Self.pack(generation, .waiting), desired: Self.pack(generation, .resuming),
            ordering: .acquiringAndReleasing
        ).exchanged
    }

    /// Called by the winner, which resumes the task with what this returns.
    private func takeContinuation() -> UnsafeContinuation<Void, any Error> {
        let continuation = self.continuation!
        self.continuation = nil
        return continuation
    }
}
