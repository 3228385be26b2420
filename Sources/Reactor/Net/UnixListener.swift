#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// A listening Unix-domain stream socket, at a path or an abstract name.
///
/// Accepting, ``StreamListener/connections`` and ``StreamListener/serve(on:maxConnections:_:)``
/// come from ``StreamListener``. A path-bound listener leaves its socket file behind
/// when closed, as the kernel does; bind with `removingStaleFile: true` to take it over.
public final class UnixListener: StreamListener {
    /// The registered socket.
    public let descriptor: AsyncFD

    init(descriptor: AsyncFD) {
        self.descriptor = descriptor
    }

    /// Binds a listening socket to `address` and starts listening.
    ///
    /// - Parameters:
    ///   - address: a Unix path (``SocketAddress/unix(path:)``) or abstract name
    ///     (``SocketAddress/unixAbstract(name:)``).
    ///   - backlog: how many connections the kernel queues before they are accepted.
    ///   - removingStaleFile: first removes a socket file at the path that no socket
    ///     answers on any more. A live socket's file, or a file of another kind, is never
    ///     removed; binding then fails with `Errno.addressInUse`.
    ///   - loop: the loop to register on; by default the calling thread's, or a default-group loop.
    /// - Throws: ``IOError`` with operation `.socket`, `.bind` or `.listen` and `address`;
    ///   ``ReactorError/loopShutDown``.
    public static func bind(
        to address: SocketAddress,
        backlog: Int = 1_024,
        removingStaleFile: Bool = false,
        on loop: EventLoop? = nil
    ) throws -> UnixListener {
        let type = CInt(SOCK_STREAM.rawValue)
        if removingStaleFile { try SocketCalls.removeStaleUnixSocket(at: address, type: type) }
        return UnixListener(descriptor: try SocketCalls.open(.unix, type: type, boundTo: address, listening: backlog, on: loop))
    }

    /// Waits for the next connection and registers it on `loop` (by default this
    /// listener's loop). See ``StreamListener/accept(on:)``.
    public func accept(on loop: EventLoop?) async throws -> UnixStream {
        let (connection, peer) = try await descriptor.acceptConnection(on: loop)
        return UnixStream(descriptor: connection, peerAddress: peer)
    }
}
