#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import DequeModule
import SystemPackage

/// The connections a multishot accept (io_uring) delivered to a listener, until its
/// `accept` calls take them. Loop thread only.
///
/// One submission accepts every connection that arrives while it lasts: a burst costs
/// one completion per connection and no syscall. It ends on an error (`EMFILE`, say),
/// when the listener closes, or when the loop shuts down; the next `accept` starts
/// another once the error was handled.
final class AcceptedConnections: CompletionSink, @unchecked Sendable {
    // `@unchecked Sendable`: every field is touched on the loop's thread only;
    // `descriptorClosed()` hands its work to the loop when called elsewhere.
    private var descriptors = Deque<CInt>()
    private var failure: Errno?
    /// Whether a multishot accept is in flight.
    private(set) var isArmed = false
    /// How many were started (for tests: a burst should need one).
    private(set) var armings = 0
    private let io: ScheduledIO
    private let listener: FileDescriptor
    private let loop: EventLoop

    init(io: ScheduledIO, listener: FileDescriptor, loop: EventLoop) {
        self.io = io
        self.listener = listener
        self.loop = loop
    }

    /// Closes the connections nobody took: once the listener is closed, `accept` throws
    /// before it looks at them. An accept still in flight closes what it delivers later.
    func descriptorClosed() {
        if loop.isCurrent {
            discardQueued()
        } else {
            loop.execute { self.discardQueued() }
        }
    }

    /// The oldest connection not taken yet.
    func next() -> CInt? { descriptors.popFirst() }

    /// The error that ended the last multishot accept, once.
    func takeFailure() -> Errno? {
        defer { failure = nil }
        return failure
    }

    /// Starts a multishot accept, counted as an operation on the listener until it ends.
    func arm(on reactor: Reactor) throws(ReactorError) {
        _ = io.beginOperation()
        do {
            try reactor.startMultishot(.acceptMultishot(io.descriptor), on: io, sink: self)
        } catch {
            endOperation()
            throw error
        }
        isArmed = true
        armings += 1
    }

    func receive(_ completion: Completion) {
        let (result, more) = (completion.result, completion.more)
        let closed = io.snapshot().isClosed || io.snapshot().isShutDown
        if result >= 0 {
            // A connection that arrives after the listener closed has nobody to take it.
            if closed { SocketCalls.discard(result) } else { descriptors.append(result) }
        } else if result != -ECANCELED {
            failure = Errno(rawValue: -result)
        }
        if !more {
            isArmed = false
            io.unclaim(reading: true)
            if closed { discardQueued() }
            endOperation()
        }
        io.reader.notify()
    }

    private func discardQueued() {
        while let fd = descriptors.popFirst() { SocketCalls.discard(fd) }
    }

    /// Counts the accept out; the last operation on a closed listener closes it.
    private func endOperation() {
        if io.endOperation() { try? listener.close() }
    }
}

extension AsyncFD {
    /// The next connection of the listener's multishot accept: the completion path, on
    /// the listener's loop. The accept's own failure is thrown once, as `accept4`'s is.
    func acceptCompleting() async throws -> (CInt, SocketAddress) {
        let accepted: AcceptedConnections
        if let existing = queuedConnections {
            accepted = existing
        } else {
            accepted = AcceptedConnections(io: io, listener: fileDescriptor, loop: eventLoop)
            queuedConnections = accepted
        }
        while true {
            if let error = Self.unusable(io.snapshot()) { throw error }
            if let fd = accepted.next() {
                return (fd, (try? SocketCalls.address(of: fd, peer: true)) ?? .unnamedUnix)
            }
            if let failure = accepted.takeFailure() { throw IOError(.accept, failure) }
            if !accepted.isArmed { try accepted.arm(on: eventLoop.reactor) }
            try await io.reader.park()
        }
    }
}
