#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// A listening TCP socket.
///
/// ```swift
/// let listener = try TCPListener.bind(to: SocketAddress(parsing: "127.0.0.1:7000"))
/// try await listener.serve { connection in
///     var buffer = [UInt8](repeating: 0, count: 16 * 1024)
///     while case let count = try await connection.read(into: &buffer), count > 0 {
///         try await connection.write(buffer[..<count])
///     }
/// }
/// ```
///
/// Accepting, ``StreamListener/connections`` and ``StreamListener/serve(on:maxConnections:_:)``
/// come from ``StreamListener``.
public final class TCPListener: StreamListener {
    /// The registered socket.
    public let descriptor: AsyncFD

    init(descriptor: AsyncFD) {
        self.descriptor = descriptor
    }

    /// Binds a listening socket to `address` and starts listening.
    ///
    /// - Parameters:
    ///   - address: an IPv4 or IPv6 address; port 0 lets the kernel pick one, which
    ///     ``Socket/localAddress`` then tells.
    ///   - backlog: how many connections the kernel queues before they are accepted.
    ///   - reuseAddress: set `SO_REUSEADDR`, so that a restarted server can bind while old
    ///     connections linger in `TIME_WAIT`. On by default.
    ///   - reusePort: set `SO_REUSEPORT`, so that several listeners (one per loop, say)
    ///     share the port and the kernel spreads connections among them.
    ///   - loop: the loop to register on; by default the calling thread's, or a default-group loop.
    /// - Throws: ``IOError`` with operation `.socket`, `.setOption`, `.bind` (for example
    ///   `Errno.addressInUse`) or `.listen`, and `address`; ``ReactorError/loopShutDown``.
    public static func bind(
        to address: SocketAddress,
        backlog: Int = 1_024,
        reuseAddress: Bool = true,
        reusePort: Bool = false,
        on loop: EventLoop? = nil
    ) throws -> TCPListener {
        let type = CInt(SOCK_STREAM.rawValue)
        return TCPListener(descriptor: try SocketCalls.open(
            address.family, type: type, boundTo: address, listening: backlog, on: loop
        ) { fd in
            if reuseAddress { try SocketOption.reuseAddress.set(true, on: fd) }
            if reusePort { try SocketOption.reusePort.set(true, on: fd) }
            if address.family == .ipv6 { try SocketOption.ipv6Only.set(true, on: fd) }
        })
    }

    /// Waits for the next connection and registers it on `loop` (by default this
    /// listener's loop). See ``StreamListener/accept(on:)``.
    public func accept(on loop: EventLoop?) async throws -> TCPStream {
        let (connection, peer) = try await descriptor.acceptConnection(on: loop)
        return TCPStream(descriptor: connection, peerAddress: peer)
    }
}
