import CReactor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// A listening socket that accepts connected streams: TCP, or a Unix stream socket.
///
/// Besides ``accept(on:)``, every listener offers ``connections`` (an `AsyncSequence`)
/// and ``serve(on:maxConnections:_:)``, which runs a handler per connection.
public protocol StreamListener: Socket {
    /// The streams this listener accepts. A class: a handler for them then takes one in
    /// the same form whether it is generic or not, and needs no conversion thunk, whose
    /// frame a waiting connection's task would hold.
    associatedtype Connection: StreamSocket, AnyObject

    /// Waits for the next connection and registers it on `loop` (by default the
    /// listener's own loop).
    ///
    /// When the process or the system runs out of descriptors (`EMFILE`, `ENFILE`) or
    /// memory, the listener backs off (10 ms, doubling up to one second) and tries again
    /// instead of failing or spinning; pending connections wait in the backlog meanwhile.
    /// A connection that was reset before it was accepted is skipped.
    ///
    /// - Throws: ``IOError`` with operation `.accept`; `CancellationError`;
    ///   ``ReactorError/closed`` once the listener is closed; ``ReactorError/loopShutDown``.
    func accept(on loop: EventLoop?) async throws -> Connection
}

extension StreamListener {
    /// Waits for the next connection, registered on the listener's loop.
    public func accept() async throws -> Connection {
        try await accept(on: nil)
    }

    /// The accepted connections, one per iteration, registered on the listener's loop.
    /// The sequence ends when the listener is closed, and throws what ``accept(on:)``
    /// throws otherwise.
    public var connections: ConnectionSequence<Self> { ConnectionSequence(listener: self) }

    /// Accepts connections and runs `handler` for each in a task of its own, until the
    /// listener is closed (a graceful stop) or the calling task is cancelled.
    ///
    /// ```swift
    /// try await listener.serve(on: group, maxConnections: 10_000) { connection in
    ///     var buffer = [UInt8](repeating: 0, count: 16 * 1024)
    ///     while case let count = try await connection.read(into: &buffer), count > 0 {
    ///         try await connection.write(buffer[..<count])
    ///     }
    /// }
    /// ```
    ///
    /// Each connection is registered on a loop of `group` in turn (or on the listener's
    /// loop), and its handler runs on that same loop, so its I/O resumes it without a
    /// thread hop. The connection is closed when its handler returns or throws; what a
    /// handler throws ends that connection only.
    ///
    /// Closing the listener stops accepting; `serve` then waits for the running handlers
    /// and returns. Cancelling the calling task also cancels the handlers.
    ///
    /// - Parameters:
    ///   - group: the loops to spread connections over; nil keeps them on the listener's loop.
    ///   - maxConnections: at most this many handlers run at once; further connections
    ///     wait in the kernel's backlog until one ends. Nil: no limit.
    ///   - handler: serves one connection.
    /// - Throws: what ``accept(on:)`` throws, except ``ReactorError/closed``; `CancellationError`.
    public func serve(
        on group: EventLoopGroup? = nil,
        maxConnections: Int? = nil,
        _ handler: @escaping @Sendable (Connection) async throws -> Void
    ) async throws {
        precondition(maxConnections.map { $0 > 0 } ?? true, "maxConnections must be positive")
        let slots = ConnectionSlots(limit: maxConnections ?? .max)
        try await withThrowingDiscardingTaskGroup { tasks in
            while true {
                try await slots.acquire()
                let loop = group?.next() ?? eventLoop
                let connection: Connection
                do {
                    connection = try await accept(on: loop)
                } catch ReactorError.closed {
                    slots.release()
                    return
                }
                tasks.addTask(executorPreference: loop) {
                    defer {
                        try? connection.close()
                        slots.release()
                    }
                    try? await handler(connection)
                }
            }
        }
    }
}

/// The connections of a ``StreamListener``, as an `AsyncSequence`.
public struct ConnectionSequence<Listener: StreamListener>: AsyncSequence, Sendable {
    let listener: Listener

    /// Accepts the next connection on each call to `next()`.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let listener: Listener

        /// The next connection, or nil once the listener is closed.
        public mutating func next() async throws -> Listener.Connection? {
            do {
                return try await listener.accept(on: nil)
            } catch ReactorError.closed {
                return nil
            }
        }
    }

    /// Starts accepting.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(listener: listener) }
}

/// Counts running handlers against a limit; the acceptor waits for a free slot.
private final class ConnectionSlots: Sendable {
    private let limit: Int
    private let running = Locked(0)
    /// The acceptor, parked while every slot is taken.
    private let acceptor = Waiter()

    init(limit: Int) { self.limit = limit }

    func acquire() async throws {
        while true {
            let taken = running.withLock { running in
                guard running < limit else { return false }
                running += 1
                return true
            }
            if taken { return }
            try await acceptor.park()
        }
    }

    func release() {
        running.withLock { $0 -= 1 }
        acceptor.notify()
    }
}

extension AsyncFD {
    /// `accept4(2)` with `SOCK_CLOEXEC | SOCK_NONBLOCK`, replaceable so tests can force errors.
    typealias AcceptCall = (_ listener: CInt, _ address: UnsafeMutablePointer<sockaddr>, _ length: UnsafeMutablePointer<socklen_t>) -> CInt

    /// Accepts one connection, backing off on descriptor or memory exhaustion (DESIGN
    /// §3.5), and registers it on `loop`. On the listener's own loop, a completion
    /// backend accepts through a multishot accept, unless a `call` is forced.
    func acceptConnection(
        on loop: EventLoop?, using forced: AcceptCall? = nil
    ) async throws -> (AsyncFD, SocketAddress) {
        var backoff = Duration.milliseconds(10)
        while true {
            let (fd, peer): (CInt, SocketAddress)
            do {
                (fd, peer) = forced == nil && runsCompletions
                    ? try await acceptCompleting()
                    : try await acceptReady(using: forced ?? { creactor_accept($0, $1, $2) })
            } catch let error as IOError where Self.isExhaustion(error.errno) {
                try await eventLoop.clock.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(1))
                continue
            } catch let error as IOError where error.errno == .connectionAbort {
                continue
            }
            do {
                return (try AsyncFD(FileDescriptor(rawValue: fd), on: loop ?? eventLoop), peer)
            } catch {
                SocketCalls.discard(fd)
                throw error
            }
        }
    }

    /// One `accept4` once the listener is readable: the readiness path.
    private func acceptReady(using call: AcceptCall) async throws -> (CInt, SocketAddress) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let fd = try await perform(.readable, as: .accept) { (listener) throws(Errno) in
            try withUnsafeMutablePointer(to: &storage) { (pointer) throws(Errno) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(Errno) in
                    try valueOrErrno { call(listener, address, &length) }
                }
            }
        }
        return (fd, (try? SocketAddress(storage, length: length)) ?? .unnamedUnix)
    }

    static func isExhaustion(_ errno: Errno) -> Bool {
        errno == .tooManyOpenFiles || errno == .tooManyOpenFilesInSystem
            || errno == .noBufferSpace || errno == .noMemory
    }
}
