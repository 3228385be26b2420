import Synchronization

/// One parked task: its continuation, and the atomic word that decides who resumes it.
///
/// The word is `| generation: 62 | state: 2 |`. A park moves `idle → parking → waiting`; the
/// reactor (``notify()``), a timer (``resume(generation:)``) or the cancellation
/// handler each try to move `waiting → idle` with the generation bumped, and only
/// the one whose compare-and-swap succeeds touches the continuation. That makes
/// every park resume exactly once, from whichever thread wins, and makes a late
/// cancellation handler (still holding the old generation) a no-op.
///
/// A notification that finds nobody waiting leaves `notified` behind, so a task that
/// was about to park sees it instead of sleeping through the event.
final class Waiter: @unchecked Sendable {
    private enum State: UInt64 {
        case idle = 0
        case waiting = 1
        case notified = 2
        /// Claimed by a task that is storing its continuation.
        case parking = 3
    }

    private let word = Atomic<UInt64>(0)
    /// Written by the parking task between its `idle → parking` and `parking → waiting` swaps (release), read and
    /// cleared only by the winner of the `waiting → idle` swap (acquire).
    private var continuation: UnsafeContinuation<Void, any Error>?

    private static func pack(_ generation: UInt64, _ state: State) -> UInt64 {
        generation << 2 | state.rawValue
    }

    private static func unpack(_ word: UInt64) -> (generation: UInt64, state: State) {
        (word >> 2, State(rawValue: word & 3)!)
    }

    /// Whether a task is parked here now (for tests and diagnostics).
    var isWaiting: Bool { Self.unpack(word.load(ordering: .acquiring)).state == .waiting }

    /// The generation the next park will use; a timer records it to resume that park only.
    var generation: UInt64 { Self.unpack(word.load(ordering: .relaxed)).generation }

    /// Suspends the current task until ``notify()``, ``resume(generation:throwing:)`` or
    /// its cancellation. Returns at once, without suspending, if a notification is pending.
    ///
    /// - Parameters:
    ///   - arm: runs once the task is parked, before it can be cancelled by a flag check.
    ///   - disarm: runs once if cancellation wins, on the cancelling thread.
    /// - Throws: `CancellationError` if the task was cancelled while parked;
    ///   ``ReactorError/busy`` if another task is parked here already.
    func park(arm: () -> Void, disarm: @Sendable () -> Void) async throws {
        let current = word.load(ordering: .acquiring)
        let (generation, state) = Self.unpack(current)
        switch state {
        case .notified:
            word.store(Self.pack(generation, .idle), ordering: .relaxed)
            return
        case .waiting, .parking:
            throw ReactorError.busy
        case .idle:
            break
        }
        // Claim the slot before writing the continuation, so a second task can never
        // overwrite the continuation of the first.
        let (claimed, seen) = word.compareExchange(
            expected: current, desired: Self.pack(generation, .parking), ordering: .acquiring)
        if !claimed {
            if Self.unpack(seen).state == .notified {
                word.store(Self.pack(generation, .idle), ordering: .relaxed)
                return
            }
            throw ReactorError.busy
        }
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                self.continuation = continuation
                let (parked, _) = word.compareExchange(
                    expected: Self.pack(generation, .parking), desired: Self.pack(generation, .waiting),
                    ordering: .releasing)
                guard parked else {
                    // notify() turned `parking` into `notified` meanwhile: take it.
                    self.continuation = nil
                    word.store(Self.pack(generation, .idle), ordering: .relaxed)
                    continuation.resume()
                    return
                }
                arm()
                // A handler installed on an already-cancelled task ran before the
                // continuation existed and found nothing to cancel: check once more.
                if Task.isCancelled { cancel(generation: generation, disarm: disarm) }
            }
        } onCancel: {
            cancel(generation: generation, disarm: disarm)
        }
    }

    /// Wakes the parked task, or leaves a notification for the next park.
    func notify() {
        var current = word.load(ordering: .acquiring)
        while true {
            let (generation, state) = Self.unpack(current)
            let desired: UInt64
            switch state {
            case .notified: return
            case .idle, .parking: desired = Self.pack(generation, .notified)
            case .waiting: desired = Self.pack(generation &+ 1, .idle)
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
        if let error { takeContinuation().resume(throwing: error) } else { takeContinuation().resume() }
        return true
    }

    private func cancel(generation: UInt64, disarm: @Sendable () -> Void) {
        guard win(generation: generation) else { return }
        disarm()
        takeContinuation().resume(throwing: CancellationError())
    }

    private func win(generation: UInt64) -> Bool {
        word.compareExchange(
            expected: Self.pack(generation, .waiting), desired: Self.pack(generation &+ 1, .idle),
            ordering: .acquiringAndReleasing
        ).exchanged
    }

    private func takeContinuation() -> UnsafeContinuation<Void, any Error> {
        let continuation = self.continuation!
        self.continuation = nil
        return continuation
    }
}
