import Synchronization

/// A count that one thread, the loop's, changes, and that any thread may read.
///
/// The loop's changes are a load and a store, not a locked read-modify-write: with one
/// writer, no change can be lost. A decrement from another thread (a buffer dropped after
/// its task left the loop) goes to a second count, which is atomic.
struct LoopCounter: ~Copyable {
    private let onLoop = Atomic<Int>(0)
    private let elsewhere = Atomic<Int>(0)

    init() {}

    /// Loop thread only.
    func increment() {
        onLoop.store(onLoop.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    /// Loop thread only.
    func decrement() {
        onLoop.store(onLoop.load(ordering: .relaxed) &- 1, ordering: .relaxed)
    }

    /// Any thread.
    func decrementElsewhere() {
        elsewhere.add(1, ordering: .relaxed)
    }

    /// The count; from any thread, as of some recent moment.
    var value: Int {
        onLoop.load(ordering: .relaxed) &- elsewhere.load(ordering: .relaxed)
    }
}
