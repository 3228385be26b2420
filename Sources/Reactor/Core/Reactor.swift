import Synchronization
import SystemPackage

/// Turns a backend's events into woken waiters: one per event loop.
///
/// The table lock is held while a batch is dispatched, so a registration cannot be
/// freed between the wait that reported it and the dispatch that reads it; a token
/// that went stale before the wait is caught by its generation (DESIGN §3.1).
/// Holding the lock also means the backend is never used after ``shutDown()``
/// closed it.
final class Reactor: @unchecked Sendable {
    let backend: any ReactorBackend
    /// The backend again, when it also runs operations to completion.
    let completions: (any CompletionBackend)?
    private struct Registrations: ~Copyable {
        var table = RegistrationTable()
        var isShutDown = false
    }
    private let registrations = Locked(Registrations())
    /// Loop thread only (`@unchecked Sendable` covers these three): the batch buffer,
    /// the turn counter that stamps readiness, and the operations in flight.
    // `@exclusivity(unchecked)`: no access to one of these calls out to code that could
    // reach it again while it lasts (a completion's receiver only enqueues, or talks to
    // the backend), so the runtime's check on every access only costs.
    @exclusivity(unchecked) private var events: [BackendEvent] = []
    @exclusivity(unchecked) private var tick: UInt32 = 0
    @exclusivity(unchecked) private var operations = OperationTable()

    init(backend: any ReactorBackend) {
        self.backend = backend
        completions = backend as? any CompletionBackend
        events.reserveCapacity(1024)
    }

    /// Registers `fd` for both directions, assuming `readiness` until the first event.
    ///
    /// - Throws: ``ReactorError/loopShutDown`` after shutdown; the backend's `Errno`.
    func register(_ fd: CInt, assuming readiness: Readiness) throws -> ScheduledIO {
        try registrations.withLock { (registrations) throws -> ScheduledIO in
            guard !registrations.isShutDown else { throw ReactorError.loopShutDown }
            let io = registrations.table.insert { token in
                ScheduledIO(descriptor: fd, token: token, readiness: readiness, reactor: self)
            }
            do throws(Errno) {
                try backend.register(fd, token: io.token)
            } catch {
                registrations.table.remove(io.token)
                throw IOError(.register, error)
            }
            return io
        }
    }

    /// Deregisters `io` from the backend and frees its slot, whatever the backend says.
    /// Deregistering after shutdown is a no-op: the backend is gone.
    func deregister(_ io: ScheduledIO) throws(IOError) {
        try registrations.withLock { (registrations) throws(IOError) in
            guard !registrations.isShutDown, registrations.table.lookUp(io.token) != nil else { return }
            registrations.table.remove(io.token)
            do throws(Errno) {
                try backend.deregister(io.descriptor, token: io.token)
            } catch {
                throw IOError(.deregister, error)
            }
        }
    }

    /// Tells the backend a task now waits on `io` for `interest`.
    func arm(_ io: ScheduledIO, for interest: Readiness) {
        backend.arm(io.descriptor, token: io.token, interest: interest)
    }

    /// Loop thread only: waits up to `timeout` and wakes the waiters of what happened.
    /// Returns the number of events dispatched.
    @discardableResult
    func turn(timeout: Duration?) throws(Errno) -> Int {
        events.removeAll(keepingCapacity: true)
        try backend.wait(into: &events, timeout: timeout)
        var count = events.count
        if !events.isEmpty { dispatch(events) }
        completions?.takeCompletions { completion in
            operations.receiver(of: completion).deliver(completion)
            count += 1
        }
        return count
    }

    // MARK: Completion operations

    /// Loop thread only, on a completion backend: runs `operation` on `io` and returns
    /// its completion: what its syscall would have returned (a count, or a negated
    /// errno), and the provided buffer it filled, if it selected one.
    ///
    /// The task resumes only with the operation's final completion, after the kernel is
    /// done with its memory, also when it is cancelled: cancelling asks the kernel to
    /// stop the operation (`ECANCELED` if it came in time) and waits for that end.
    ///
    /// - Throws: ``ReactorError/busy`` if another operation is in flight in the same
    ///   direction; ``ReactorError/closed`` or ``ReactorError/loopShutDown`` if `io`
    ///   closed before the operation could start.
    ///
    /// With `eagerly`, the operation goes to the kernel at once, and if it completes
    /// inside that call, it returns without suspending; otherwise the task waits for its
    /// completion as usual.
    nonisolated(nonsending) func complete(
        _ operation: CompletionOperation, on io: ScheduledIO, reading: Bool, eagerly: Bool = false
    ) async throws(ReactorError) -> Completion {
        let (completions, id) = try claim(io, reading: reading)
        defer { io.unclaim(reading: reading) }
        completions.submit(operation, as: id)
        if eagerly, let completion = completions.submitNow(returning: id) {
            operations.release(id)
            return completion
        }
        // A cancellation reaches the operation through `io`'s claim, which names it
        // until the `defer` above, after the record is gone.
        return await whileCancellable(.operation(on: io, reading: reading)) {
            // The completion cannot be delivered before this: only this thread's next
            // turn hands completions to their receivers.
            // Executor-inheriting, for the reason `Waiter.park(arm:)` gives.
            await _unsafeInheritExecutor_withUnsafeContinuation { continuation in
                operations.attach(continuation, to: id)
            }
        }
    }

    /// Loop thread only, on a completion backend: starts the multishot `operation` on
    /// `io`, and sends each of its completions to `sink`, up to the last.
    ///
    /// The operation holds `io`'s reading claim until then: closing `io` cancels it. The
    /// sink ends the claim (``ScheduledIO/unclaim(reading:)``) when the last one comes.
    ///
    /// - Returns: the operation's ID, which the sink may cancel.
    /// - Throws: as ``complete(_:on:reading:)``.
    @discardableResult
    func startMultishot(
        _ operation: CompletionOperation, on io: ScheduledIO, sink: any CompletionSink
    ) throws(ReactorError) -> OperationID {
        let (completions, id) = try claim(io, reading: true)
        operations.attach(sink, to: id)
        completions.submit(operation, as: id)
        return id
    }

    /// Loop thread only, on a completion backend: starts `operation`, which claims no
    /// direction of its descriptor, and sends its completions to `sink`.
    ///
    /// - Returns: the operation's ID, which the sink may cancel.
    func start(_ operation: CompletionOperation, sink: any CompletionSink) -> OperationID {
        guard let completions else { preconditionFailure("not a completion backend") }
        let id = operations.reserve()
        operations.attach(sink, to: id)
        completions.submit(operation, as: id)
        return id
    }

    /// Reserves an operation slot and claims `io`'s direction for it.
    private func claim(_ io: ScheduledIO, reading: Bool) throws(ReactorError) -> (any CompletionBackend, OperationID) {
        guard let completions else { preconditionFailure("not a completion backend") }
        let id = operations.reserve()
        guard io.claim(reading: reading, for: id) else {
            operations.release(id)
            throw .busy
        }
        // A close that came before the claim did not see it and cancels nothing.
        let snapshot = io.snapshotAfterClaim()
        if snapshot.isClosed || snapshot.isShutDown {
            io.unclaim(reading: reading)
            operations.release(id)
            throw snapshot.isClosed ? .closed : .loopShutDown
        }
        return (completions, id)
    }

    /// Loop thread only: how many completion operations are in flight.
    var operationsInFlight: Int { operations.inFlight }

    /// Cancels the operations in flight on `io`, from any thread; each still ends with
    /// its completion.
    func cancelOperations(on io: ScheduledIO) {
        guard let completions else { return }
        io.forEachClaimed { completions.cancel($0) }
    }

    /// Loop thread only: wakes the waiters of one batch of events, stamped with a new
    /// turn. Tests call it with events of their own making.
    func dispatch(_ batch: [BackendEvent]) {
        tick &+= 1
        let stamp = tick
        registrations.withLock { registrations in
            for event in batch {
                registrations.table.lookUp(event.token)?.deliver(event.readiness, tick: stamp)
            }
        }
    }

    /// Refuses new registrations, wakes every waiter with the shutdown flag set, and
    /// closes the backend. The descriptors themselves stay with their owners.
    ///
    /// Operations in flight are cancelled, and their tasks resumed once the kernel has
    /// ended each: until then it may still write to their memory.
    func shutDown() {
        registrations.withLock { registrations in
            registrations.isShutDown = true
            registrations.table.forEach { $0.close(shutDown: true) }
        }
        if let completions, operations.inFlight > 0 {
            completions.cancelAll()
            while operations.inFlight > 0 {
                do {
                    try turn(timeout: .milliseconds(100))
                } catch {
                    fatalError("waiting for cancelled operations to end failed: \(error)")
                }
            }
        }
        registrations.withLock { _ in backend.close() }
    }
}
