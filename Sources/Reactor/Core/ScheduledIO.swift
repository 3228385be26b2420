import Synchronization

/// The reactor's state for one registered descriptor: what it is ready for, who waits
/// on it, and whether it may still be used.
///
/// All of it is one atomic word, so that "set bits and stamp the tick", "clear bits
/// unless a newer event came" and "count an operation in unless closed" are each a
/// single atomic step:
///
///     | released: 1 | shutDown: 1 | closed: 1 | in flight: 13 | tick: 16 | readiness: 32 |
///
/// - readiness: ``Readiness`` bits; the sticky ones are never cleared.
/// - tick: the reactor turn of the last event, so that a clear after `EAGAIN` does not
///   erase an event that raced in after the caller looked (DESIGN §3.3).
/// - in flight: operations between ``beginOperation()`` and ``endOperation()``. The
///   descriptor is closed only when this is zero, so no syscall can reach a reused number.
/// - closed / shutDown: why no new operation may start; the waiters were woken to see it.
/// - released: the descriptor itself was closed (exactly once).
final class ScheduledIO: Sendable {
    let descriptor: CInt
    let token: Token
    /// Waits for readable (or a sticky bit).
    let reader = Waiter()
    /// Waits for writable (or a sticky bit).
    let writer = Waiter()
    private let word: Atomic<UInt64>

    private static let readinessMask: UInt64 = 0xFFFF_FFFF
    private static let tickShift: UInt64 = 32
    private static let tickMask: UInt64 = 0xFFFF << 32
    private static let inFlightOne: UInt64 = 1 << 48
    private static let inFlightMask: UInt64 = 0x1FFF << 48
    private static let closedBit: UInt64 = 1 << 61
    private static let shutDownBit: UInt64 = 1 << 62
    private static let releasedBit: UInt64 = 1 << 63

    /// A look at the word, taken when an operation started.
    struct Snapshot: Sendable {
        fileprivate let word: UInt64
        var readiness: Readiness { Readiness(rawValue: UInt32(truncatingIfNeeded: word)) }
        fileprivate var tick: UInt64 { word & ScheduledIO.tickMask }
        var isClosed: Bool { word & ScheduledIO.closedBit != 0 }
        var isShutDown: Bool { word & ScheduledIO.shutDownBit != 0 }
    }

    /// - Parameter readiness: what to assume before the first event. Assuming a
    ///   direction ready costs at most one `EAGAIN`, and may save a turn.
    init(descriptor: CInt, token: Token, readiness: Readiness) {
        self.descriptor = descriptor
        self.token = token
        word = Atomic(UInt64(readiness.rawValue))
    }

    /// The word as it is now, for a wait that runs no syscall itself.
    func snapshot() -> Snapshot {
        Snapshot(word: word.load(ordering: .acquiring))
    }

    /// Counts an operation in and returns what it may assume. Pair with ``endOperation()``.
    func beginOperation() -> Snapshot {
        Snapshot(word: word.add(Self.inFlightOne, ordering: .acquiring).oldValue)
    }

    /// Counts an operation out. Returns true if the caller must now close the descriptor:
    /// the resource was closed while the operation ran, and this was the last one.
    func endOperation() -> Bool {
        var current = word.load(ordering: .relaxed)
        while true {
            var desired = current - Self.inFlightOne
            let release = desired & (Self.closedBit | Self.releasedBit | Self.inFlightMask) == Self.closedBit
            if release { desired |= Self.releasedBit }
            let (done, seen) = word.compareExchange(
                expected: current, desired: desired, ordering: .acquiringAndReleasing)
            if done { return release }
            current = seen
        }
    }

    /// Records an event from the reactor's turn `tick` and wakes whoever it concerns.
    func deliver(_ readiness: Readiness, tick: UInt16) {
        let stamp = UInt64(tick) << Self.tickShift
        var current = word.load(ordering: .relaxed)
        while true {
            let desired = (current & ~Self.tickMask) | stamp | UInt64(readiness.rawValue)
            let (done, seen) = word.compareExchange(
                expected: current, desired: desired, ordering: .acquiringAndReleasing)
            if done { break }
            current = seen
        }
        if !readiness.isDisjoint(with: [.readable, .readClosed, .error]) { reader.notify() }
        if !readiness.isDisjoint(with: [.writable, .writeClosed, .error]) { writer.notify() }
    }

    /// Clears `readiness` after `EAGAIN`, unless an event arrived after `snapshot`.
    func clear(_ readiness: Readiness, ifUnchangedSince snapshot: Snapshot) {
        let bits = UInt64(readiness.subtracting(.sticky).rawValue)
        var current = word.load(ordering: .acquiring)
        while current & Self.tickMask == snapshot.tick {
            let (done, seen) = word.compareExchange(
                expected: current, desired: current & ~bits, ordering: .acquiringAndReleasing)
            if done { return }
            current = seen
        }
    }

    /// Stops new operations and wakes both waiters to see why. Returns true if the
    /// caller must close the descriptor now (nothing is in flight, and closing was asked).
    func close(shutDown: Bool = false) -> Bool {
        var current = word.load(ordering: .relaxed)
        var release = false
        while true {
            var desired = current | (shutDown ? Self.shutDownBit : Self.closedBit)
            release = !shutDown && desired & (Self.inFlightMask | Self.releasedBit) == 0
            if release { desired |= Self.releasedBit }
            let (done, seen) = word.compareExchange(
                expected: current, desired: desired, ordering: .acquiringAndReleasing)
            if done { break }
            current = seen
        }
        reader.notify()
        writer.notify()
        return release
    }
}
