import Reactor

/// A TCP server spread over event loops: one listening socket per loop, all bound to the
/// same address, each accepting on its own loop and serving its connections there.
///
/// ```swift
/// try await withEventLoopGroup(loopCount: 2) { group in
///     let server = try TCPServer(bindingTo: .ipv4(127, 0, 0, 1, port: 7000), on: group.loops) { connection in
///         try await EchoServer.handle(connection)
///     }
///     // ... until it is time to stop:
///     try await server.shutdown(gracePeriod: .seconds(10))
/// }
/// ```
///
/// With more than one loop the listeners set `SO_REUSEPORT`, and on Linux the kernel
/// spreads incoming connections over them by a hash of the addresses. A connection stays
/// on the loop that accepted it, so its handler's I/O never hops threads; a loop that is
/// busy does not slow the others' connections down.
///
/// Every accepted connection gets `TCP_NODELAY`, from its listener: these servers answer
/// small messages, and an answer must not wait for Nagle's algorithm.
///
/// The lifecycle:
/// 1. `init` binds every listener and starts one serving task per loop, which runs
///    `handler` for each connection in a task of its own (see
///    ``StreamListener/serve(on:maxConnections:_:)``).
/// 2. ``close()`` closes the listeners: nothing new is accepted, and the connections
///    already accepted carry on.
/// 3. ``shutdown(gracePeriod:)`` closes, waits for the handlers to end by themselves, and
///    cancels those that run past the grace period (an idle keep-alive client, say).
///
/// A server that is never shut down runs until its loops do.
public final class TCPServer: Sendable {
    /// The address the listeners are bound to, with the port the kernel chose if the
    /// address asked for port 0.
    public let address: SocketAddress
    private let listeners: [TCPListener]
    private let servingTasks: [Task<Void, any Error>]

    /// Binds one listener per loop to `address`, and starts serving.
    ///
    /// - Parameters:
    ///   - address: an IPv4 or IPv6 address; port 0 lets the kernel pick one, which every
    ///     listener then shares and ``address`` tells.
    ///   - loops: the loops to accept and serve on, one listener each.
    ///   - handler: serves one connection, on the loop that accepted it. The connection is
    ///     closed when the handler returns or throws; what it throws ends that connection only.
    /// - Throws: ``IOError`` from binding (for example `Errno.addressInUse`); the listeners
    ///   bound before the failure are closed.
    public init(
        bindingTo address: SocketAddress,
        on loops: [EventLoop],
        handler: @escaping @Sendable (TCPStream) async throws -> Void
    ) throws {
        precondition(!loops.isEmpty, "a server needs at least one loop")
        var listeners: [TCPListener] = []
        var bound = address
        do {
            for loop in loops {
                let listener = try TCPListener.bind(to: bound, reusePort: loops.count > 1, on: loop)
                listeners.append(listener)
                // Accepted connections inherit it (Linux, the BSDs and macOS alike), so that
                // no handler waits behind a wrapper that sets it: one task frame less per
                // connection, while it waits.
                try listener.setOption(.noDelay, to: true)
                // The listeners after the first join the port the first one got.
                if listeners.count == 1 { bound = try listener.localAddress }
            }
        } catch {
            for listener in listeners { try? listener.close() }
            throw error
        }
        self.address = bound
        self.listeners = listeners
        servingTasks = listeners.map { listener in
            Task(executorPreference: listener.eventLoop) {
                try await listener.serve(handler)
            }
        }
    }

    /// The loops this server accepts on, one listener each.
    public var loops: [EventLoop] { listeners.map(\.eventLoop) }

    /// Stops accepting: closes every listener. Connections already accepted carry on.
    /// Closing twice does nothing.
    public func close() {
        // `close` releases the descriptor even when it reports an error, and a listener
        // that is gone is all a server that stops needs.
        for listener in listeners { try? listener.close() }
    }

    /// Stops accepting, waits for the connections to end, and cancels those still open
    /// after `gracePeriod`.
    ///
    /// Cancelling a handler makes its pending read or write throw `CancellationError`;
    /// its connection is then closed.
    ///
    /// - Parameter gracePeriod: how long the open connections may take to end by themselves.
    /// - Returns: true if every connection ended within the grace period; false if some
    ///   were cancelled.
    /// - Throws: the first error a listener stopped accepting with before it was closed
    ///   (an ``IOError`` with operation `.accept`, or ``ReactorError/loopShutDown``).
    @discardableResult
    public func shutdown(gracePeriod: Duration) async throws -> Bool {
        close()
        let tasks = servingTasks
        // Cancels the serving tasks, and so their handlers, once the grace period ends;
        // returns whether it had to. A timer of the server's own loop measures it.
        let loop = listeners[0].eventLoop
        let deadline = Task(executorPreference: loop) { () -> Bool in
            do {
                try await loop.clock.sleep(for: gracePeriod)
            } catch {
                return false
            }
            for task in tasks { task.cancel() }
            return true
        }
        var failure: (any Error)?
        for task in tasks {
            do {
                try await task.value
            } catch is CancellationError {
                // Cancelled by the deadline above, which reports it.
            } catch {
                failure = failure ?? error
            }
        }
        deadline.cancel()
        let cancelled = await deadline.value
        if let failure { throw failure }
        return !cancelled
    }
}
