#if os(Linux)
import CReactor
import Glibc
import Synchronization
import SystemPackage

/// Readiness backend over `poll(2)`: a dense `pollfd` array, woken through a pipe.
///
/// `poll` is level-triggered, so a descriptor is polled only for the directions a
/// task has armed, and a direction is disarmed once it is reported (oneshot). That
/// gives the same "report once, re-arm after EAGAIN" contract as edge-triggered
/// epoll, without spinning on a descriptor that stays readable.
final class PollBackend: ReactorBackend, @unchecked Sendable {
    // `@unchecked Sendable`: `polled` and `polledTokens` are touched only by `wait`, on
    // the loop thread; the registrations are behind their lock.
    /// The registrations, dense: removing one moves the last into its place.
    private struct Registrations: ~Copyable {
        var descriptors: [CInt] = []
        var tokens: [Token] = []
        var armed: [Readiness] = []
        var positions: [CInt: Int] = [:]
        /// True while the loop thread sits in `poll`; arming then has to wake it.
        var polling = false
    }

    private let registrations = Locked(Registrations())
    private let wakeReader: CInt
    private let wakeUp: WakeUpWriter
    /// Loop thread only: what the current `poll` call looks at.
    private var polled: [pollfd] = []
    private var polledTokens: [Token] = []

    init() throws(Errno) {
        var ends: [CInt] = [-1, -1]
        _ = try ends.withUnsafeMutableBufferPointer { (buffer) throws(Errno) in
            try valueOrErrno { creactor_pipe(buffer.baseAddress!) }
        }
        wakeReader = ends[0]
        wakeUp = WakeUpWriter(ends[1])
    }

    func register(_ fd: CInt, token: Token) throws(Errno) {
        try registrations.withLock { (registrations) throws(Errno) in
            guard registrations.positions[fd] == nil else { throw .fileExists }
            registrations.positions[fd] = registrations.descriptors.count
            registrations.descriptors.append(fd)
            registrations.tokens.append(token)
            registrations.armed.append([])
        }
    }

    func deregister(_ fd: CInt, token: Token) throws(Errno) {
        // A `poll` in progress holds a reference to every descriptor it watches, so a
        // socket closed now would stay open (no FIN sent) until that call returned: wake it.
        let mustWake = try registrations.withLock { (registrations) throws(Errno) -> Bool in
            guard let position = registrations.positions.removeValue(forKey: fd) else {
                throw .noSuchFileOrDirectory
            }
            let last = registrations.descriptors.count - 1
            if position != last {
                registrations.descriptors[position] = registrations.descriptors[last]
                registrations.tokens[position] = registrations.tokens[last]
                registrations.armed[position] = registrations.armed[last]
                registrations.positions[registrations.descriptors[position]] = position
            }
            registrations.descriptors.removeLast()
            registrations.tokens.removeLast()
            registrations.armed.removeLast()
            return registrations.polling
        }
        if mustWake { wake() }
    }

    func arm(_ fd: CInt, token: Token, interest: Readiness) {
        let mustWake = registrations.withLock { registrations in
            guard let position = registrations.positions[fd],
                registrations.tokens[position] == token,
                !registrations.armed[position].isSuperset(of: interest)
            else { return false }
            registrations.armed[position].formUnion(interest)
            return registrations.polling
        }
        if mustWake { wake() }
    }

    func wait(into events: inout [BackendEvent], timeout: Duration?) throws(Errno) {
        polled.removeAll(keepingCapacity: true)
        polledTokens.removeAll(keepingCapacity: true)
        polled.append(pollfd(fd: wakeReader, events: Int16(POLLIN), revents: 0))
        polledTokens.append(.wakeUp)
        registrations.withLock { registrations in
            for position in registrations.descriptors.indices {
                let armed = registrations.armed[position]
                if armed.isEmpty { continue }
                // A half-close concerns the reader only, so it is asked for with reading:
                // polled for a waiting writer, it would be reported on every wait.
                var requested: Int16 = 0
                if armed.contains(.readable) { requested |= Int16(POLLIN) | Int16(CREACTOR_POLLRDHUP) }
                if armed.contains(.writable) { requested |= Int16(POLLOUT) }
                polled.append(pollfd(fd: registrations.descriptors[position], events: requested, revents: 0))
                polledTokens.append(registrations.tokens[position])
            }
            registrations.polling = true
        }
        let milliseconds = Duration.milliseconds(roundingUp: timeout)
        let result = polled.withUnsafeMutableBufferPointer { buffer in
            poll(buffer.baseAddress, nfds_t(buffer.count), milliseconds)
        }
        let failure = result == -1 ? Errno(rawValue: errno) : nil
        registrations.withLock { registrations in
            registrations.polling = false
            guard result > 0 else { return }
            for i in polled.indices where polled[i].revents != 0 {
                let token = polledTokens[i]
                if token == .wakeUp { continue }
                let readiness = Self.readiness(polled[i].revents)
                // Disarm exactly the directions this event wakes (their waiters re-arm when
                // they park again), unless the descriptor changed hands meanwhile.
                if let position = registrations.positions[polled[i].fd], registrations.tokens[position] == token {
                    if !readiness.isDisjoint(with: Interest.readable.wakeMask) { registrations.armed[position].remove(.readable) }
                    if !readiness.isDisjoint(with: Interest.writable.wakeMask) { registrations.armed[position].remove(.writable) }
                }
                events.append(BackendEvent(token: token, readiness: readiness))
            }
        }
        if polled[0].revents != 0 { drainWakeUps() }
        if let failure, failure != .interrupted { throw failure }
    }

    private static func readiness(_ revents: Int16) -> Readiness {
        var readiness: Readiness = []
        if revents & Int16(POLLIN) != 0 { readiness.insert(.readable) }
        if revents & Int16(POLLOUT) != 0 { readiness.insert(.writable) }
        if revents & Int16(CREACTOR_POLLRDHUP) != 0 { readiness.insert(.readClosed) }
        if revents & Int16(POLLHUP) != 0 { readiness.formUnion([.readClosed, .writeClosed]) }
        if revents & Int16(POLLERR | POLLNVAL) != 0 { readiness.insert(.error) }
        return readiness
    }

    private func drainWakeUps() {
        var sink = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        while withUnsafeMutableBytes(of: &sink, { Glibc.read(wakeReader, $0.baseAddress, $0.count) }) > 0 {}
    }

    func wake() {
        wakeUp.signal(UInt8(1))
    }

    func close() {
        // The reader outlives the writer: a wake-up into a pipe with no reader would
        // raise SIGPIPE on a thread that does not block it.
        wakeUp.close()
        closeDescriptor(wakeReader)
    }

    var descriptors: [CInt] { [wakeReader, wakeUp.descriptor] }

    var kind: BackendKind { .poll }
}
#endif
