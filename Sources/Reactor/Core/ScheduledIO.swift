import Synchronization
import SystemPackage

/// The reactor's state for one registered descriptor: what it is ready for, who waits
/// on it, and whether it may still be used.
///
/// All of it is one atomic word, so that "set bits and stamp the tick", "clear bits
/// unless a newer event came" and "count an operation in unless closed" are each a
/// single atomic step:
///
///     | released: 1 | deregistered: 1 | shutDown: 1 | closed: 1 | in flight: 20 | tick: 32 | readiness: 8 |
///
/// - readiness: ``Readiness`` bits; the sticky ones are never cleared.
/// - tick: the reactor turn of the last event, so that a clear after `EAGAIN` does not
///   erase an event that raced in after the caller looked (DESIGN §3.3).
/// - in flight: operations between ``beginOperation()`` and ``endOperation()``.
/// - closed / shutDown: why no new operation may start; the waiters were woken to see it.
/// - deregistered: the backend no longer watches the descriptor.
/// - released: the descriptor itself was closed, exactly once.
///
/// The descriptor is released once it is closed, deregistered and no operation is in
/// flight, by whichever of ``deregistered()`` and ``endOperation()`` comes last: no
/// syscall, and no deregistration, can then reach a number the kernel reused (DESIGN §3.2).
final class ScheduledIO: Sendable {
    let descriptor: CInt
    let token: Token
    /// Waits for readable (or a sticky bit).
    let reader = Waiter()
    /// Waits for writable (or a sticky bit).
    let writer = Waiter()
    private let word: Atomic<UInt64>
    /// The completion operation each direction has in flight, tagged with the top bit,
    /// or 0: one at a time per direction, and what ``AsyncFD/close()`` cancels.
    private let readOperation = Atomic<UInt64>(0)
    private let writeOperation = Atomic<UInt64>(0)
    private static let claimed: UInt64 = 1 << 63
    /// The descriptor's write-behind (see ``WriteBehind``), visible to writers on every
    /// thread: `| failure: 32 | shutdown: 2 | pending: 1 |`. The failure is the errno of
    /// the first write-behind that failed, and stays; the shutdown is a `how` of
    /// `shutdown(2)`, plus one, that waits for the pending write.
    private let behind = Atomic<UInt64>(0)
    private static let behindPending: UInt64 = 1
    private static let behindShutdownShift: UInt64 = 1
    private static let behindShutdownMask: UInt64 = 3 << 1
    private static let behindFailureShift: UInt64 = 32

    private static let tickShift: UInt64 = 8
    private static let tickMask: UInt64 = 0xFFFF_FFFF << 8
    private static let inFlightOne: UInt64 = 1 << 40
    private static let inFlightMask: UInt64 = 0xF_FFFF << 40
    private static let closedBit: UInt64 = 1 << 60
    private static let shutDownBit: UInt64 = 1 << 61
    private static let deregisteredBit: UInt64 = 1 << 62
    private static let releasedBit: UInt64 = 1 << 63

    /// A look at the word, taken when an operation started.
    struct Snapshot: Sendable {
        fileprivate let word: UInt64
        var readiness: Readiness { Readiness(rawValue: UInt32(truncatingIfNeeded: word & 0xFF)) }
        fileprivate var tick: UInt64 { word & ScheduledIO.tickMask }
        var isClosed: Bool { word & ScheduledIO.closedBit != 0 }
        var isShutDown: Bool { word & ScheduledIO.shutDownBit != 0 }
    }

    /// The reactor that registered the descriptor; nil for tests' own. Not retained: only
    /// a cancellation that reaches ``cancelOperation(reading:)`` uses it, while a task
    /// waits in that reactor's ``Reactor/complete(_:on:reading:eagerly:)``.
    private unowned(unsafe) let reactor: Reactor?

    /// - Parameter readiness: what to assume before the first event. Assuming a
    ///   direction ready costs at most one `EAGAIN`, and may save a turn.
    init(descriptor: CInt, token: Token, readiness: Readiness, reactor: Reactor?) {
        self.descriptor = descriptor
        self.token = token
        self.reactor = reactor
        word = Atomic(UInt64(readiness.rawValue))
    }

    /// The word as it is now, for a wait that runs no syscall itself.
    func snapshot() -> Snapshot {
        Snapshot(word: word.load(ordering: .acquiring))
    }

    /// The word, sequentially consistent with ``claim(reading:for:)`` and ``close(shutDown:)``.
    func snapshotAfterClaim() -> Snapshot {
        Snapshot(word: word.load(ordering: .sequentiallyConsistent))
    }

    /// Counts an operation in and returns what it may assume. Pair with ``endOperation()``.
    func beginOperation() -> Snapshot {
        Snapshot(word: word.add(Self.inFlightOne, ordering: .acquiring).oldValue)
    }

    /// Counts an operation out. Returns true if the caller must now close the descriptor.
    func endOperation() -> Bool {
        update { $0 - Self.inFlightOne }
    }

    /// Records an event from the reactor's turn `tick` and wakes whoever it concerns.
    func deliver(_ readiness: Readiness, tick: UInt32) {
        let stamp = UInt64(tick) << Self.tickShift
        _ = update { ($0 & ~Self.tickMask) | stamp | UInt64(readiness.rawValue) }
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

    /// Stops new operations and wakes both waiters to see why: the owner closed it
    /// (`shutDown` false) or the loop shut down. The descriptor stays open until
    /// ``deregistered()``.
    func close(shutDown: Bool = false) {
        _ = update(sequentiallyConsistent: true) { $0 | (shutDown ? Self.shutDownBit : Self.closedBit) }
        reader.notify()
        writer.notify()
    }

    /// Records that the backend no longer watches the descriptor. Returns true if the
    /// caller must now close it: it was closed and nothing is in flight.
    func deregistered() -> Bool {
        update { $0 | Self.deregisteredBit }
    }

    /// Whether a task waits to read: parked for readiness, or with an operation in flight.
    var isAwaitingRead: Bool {
        reader.isWaiting || readOperation.load(ordering: .acquiring) != 0
    }

    /// Whether a task waits to write. See ``isAwaitingRead``.
    var isAwaitingWrite: Bool {
        writer.isWaiting || writeOperation.load(ordering: .acquiring) != 0
    }

    /// Records `id` as the operation in flight for reading (or writing). Returns false
    /// if another one is.
    ///
    /// Sequentially consistent, as ``close(shutDown:)`` is: either the closer sees the
    /// claim and cancels it, or the claimer sees the close in its next ``snapshot()``.
    func claim(reading: Bool, for id: OperationID) -> Bool {
        let tagged = id.rawValue | Self.claimed
        return reading
            ? readOperation.compareExchange(expected: 0, desired: tagged, ordering: .sequentiallyConsistent).exchanged
            : writeOperation.compareExchange(expected: 0, desired: tagged, ordering: .sequentiallyConsistent).exchanged
    }

    /// Ends the claim ``claim(reading:for:)`` made.
    func unclaim(reading: Bool) {
        if reading {
            readOperation.store(0, ordering: .sequentiallyConsistent)
        } else {
            writeOperation.store(0, ordering: .sequentiallyConsistent)
        }
    }

    /// The cancellation record's target (see ``CancellationTarget``): cancels the
    /// operation in flight for reading (or writing), on any thread. While the record is
    /// installed, that is the cancelled task's own: the claim ends after the record.
    func cancelOperation(reading: Bool) {
        let word = reading
            ? readOperation.load(ordering: .sequentiallyConsistent)
            : writeOperation.load(ordering: .sequentiallyConsistent)
        guard word != 0, let completions = reactor?.completions else { return }
        completions.cancel(OperationID(rawValue: word & ~Self.claimed))
    }

    /// Calls `body` with the operations in flight now.
    func forEachClaimed(_ body: (OperationID) -> Void) {
        for word in [
            readOperation.load(ordering: .sequentiallyConsistent),
            writeOperation.load(ordering: .sequentiallyConsistent),
        ] where word != 0 {
            body(OperationID(rawValue: word & ~Self.claimed))
        }
    }

    // MARK: Write-behind

    /// Whether a write-behind is pending, or one failed: the one load a write makes to
    /// learn that it may go ahead.
    var hasWriteBehind: Bool { behind.load(ordering: .acquiring) != 0 }

    /// Whether a write-behind is pending: its bytes are not all with the kernel yet.
    /// Sequentially consistent, as ``close(shutDown:)`` is: either the closer sees the
    /// write pending, or the writer sees the close.
    var isWritingBehind: Bool { behind.load(ordering: .sequentiallyConsistent) & Self.behindPending != 0 }

    /// The errno of the first write-behind that failed.
    var writeBehindFailure: Errno? {
        let failure = behind.load(ordering: .acquiring) >> Self.behindFailureShift
        return failure == 0 ? nil : Errno(rawValue: CInt(failure))
    }

    /// Marks a write-behind pending. Returns false if the descriptor was closed or the
    /// loop shut down meanwhile: the mark is taken back, and nothing may start.
    func beginWriteBehind() -> Bool {
        behind.bitwiseOr(Self.behindPending, ordering: .sequentiallyConsistent)
        let snapshot = snapshotAfterClaim()
        guard snapshot.isClosed || snapshot.isShutDown else { return true }
        behind.bitwiseAnd(~Self.behindPending, ordering: .sequentiallyConsistent)
        return false
    }

    /// Ends the pending write-behind, recording `failure` unless an earlier one is.
    /// Returns the `how` of a ``deferShutdown(_:)`` that waited for it.
    func endWriteBehind(failure: Errno?) -> CInt? {
        var current = behind.load(ordering: .relaxed)
        while true {
            var desired = current & ~(Self.behindPending | Self.behindShutdownMask)
            if let failure, current >> Self.behindFailureShift == 0 {
                desired |= UInt64(UInt32(bitPattern: failure.rawValue)) << Self.behindFailureShift
            }
            let (done, seen) = behind.compareExchange(
                expected: current, desired: desired, ordering: .sequentiallyConsistent)
            if done {
                let shutdown = (current & Self.behindShutdownMask) >> Self.behindShutdownShift
                return shutdown == 0 ? nil : CInt(shutdown) - 1
            }
            current = seen
        }
    }

    /// Leaves `shutdown(2)` with `how` to the end of the pending write-behind, if one is
    /// pending. Returns false if none is: the caller shuts down now. Of two deferred,
    /// the wider (`SHUT_RDWR` over `SHUT_WR`) wins.
    func deferShutdown(_ how: CInt) -> Bool {
        var current = behind.load(ordering: .relaxed)
        while current & Self.behindPending != 0 {
            let wanted = UInt64(how + 1) << Self.behindShutdownShift
            let desired = current & ~Self.behindShutdownMask | max(current & Self.behindShutdownMask, wanted)
            let (done, seen) = behind.compareExchange(
                expected: current, desired: desired, ordering: .sequentiallyConsistent)
            if done { return true }
            current = seen
        }
        return false
    }

    /// Applies `change` atomically, and claims the release of the descriptor if the new
    /// word allows it. Returns whether the caller claimed it.
    private func update(sequentiallyConsistent: Bool = false, _ change: (UInt64) -> UInt64) -> Bool {
        var current = word.load(ordering: .relaxed)
        while true {
            var desired = change(current)
            let mask = Self.closedBit | Self.deregisteredBit | Self.releasedBit | Self.inFlightMask
            let release = desired & mask == Self.closedBit | Self.deregisteredBit
            if release { desired |= Self.releasedBit }
            let (done, seen) =
                sequentiallyConsistent
                ? word.compareExchange(expected: current, desired: desired, ordering: .sequentiallyConsistent)
                : word.compareExchange(expected: current, desired: desired, ordering: .acquiringAndReleasing)
            if done { return release }
            current = seen
        }
    }
}
