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
    private struct Registrations: ~Copyable {
        var table = RegistrationTable()
        var isShutDown = false
    }
    private let registrations = Locked(Registrations())
    /// Loop thread only (`@unchecked Sendable` covers these two): the batch buffer,
    /// and the turn counter that stamps readiness.
    private var events: [BackendEvent] = []
    private var tick: UInt32 = 0

    init(backend: any ReactorBackend) {
        self.backend = backend
        events.reserveCapacity(1024)
    }

    /// Registers `fd` for both directions, assuming `readiness` until the first event.
    ///
    /// - Throws: ``ReactorError/loopShutDown`` after shutdown; the backend's `Errno`.
    func register(_ fd: CInt, assuming readiness: Readiness) throws -> ScheduledIO {
        try registrations.withLock { (registrations) throws -> ScheduledIO in
            guard !registrations.isShutDown else { throw ReactorError.loopShutDown }
            let io = registrations.table.insert { token in
                ScheduledIO(descriptor: fd, token: token, readiness: readiness)
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
        guard !events.isEmpty else { return 0 }
        dispatch(events)
        return events.count
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
    func shutDown() {
        registrations.withLock { registrations in
            registrations.isShutDown = true
            registrations.table.forEach { $0.close(shutDown: true) }
            backend.close()
        }
    }
}
