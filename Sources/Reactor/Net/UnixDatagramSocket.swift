#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// A Unix-domain datagram socket (`AF_UNIX`, `SOCK_DGRAM`): datagrams between processes
/// on one host, addressed by a file-system path or a Linux abstract name.
///
/// ```swift
/// let server = try UnixDatagramSocket.bind(to: .unix(path: "/run/app.sock"), removingStaleFile: true)
/// let client = try UnixDatagramSocket.unbound()
/// try await client.send([1, 2, 3], to: .unix(path: "/run/app.sock"))
/// let datagram = try await server.receive(upTo: 4_096)
/// ```
///
/// Unlike UDP, Unix datagrams are not dropped: a send to a receiver whose queue is full
/// waits. Linux ends that wait when the receiver takes one of the sender's own datagrams,
/// or, for a connected sender, any datagram; a sender that shares a busy receiver with
/// others should connect to it. A datagram from an unbound socket comes from the unnamed
/// address, `unix:`, which cannot be answered. Sending and receiving come from
/// ``DatagramSocket``.
///
/// Closing a socket bound to a path leaves the socket file behind; remove it, or bind
/// the next socket with `removingStaleFile: true`.
public final class UnixDatagramSocket: DatagramSocket {
    /// The registered descriptor.
    public let descriptor: AsyncFD

    private init(_ descriptor: AsyncFD) {
        self.descriptor = descriptor
    }

    /// Makes a socket bound to a path or an abstract name.
    ///
    /// - Parameters:
    ///   - address: a Unix path (``SocketAddress/unix(path:)``) or abstract name
    ///     (``SocketAddress/unixAbstract(name:)``). The unnamed address `unix:` asks Linux
    ///     to choose an abstract name (autobind).
    ///   - removingStaleFile: first removes a socket file left at the path by a socket
    ///     that has closed. The file is removed only if it is a socket and no socket
    ///     answers on it (`connect(2)` is refused), so a live socket's path or any other
    ///     kind of file is never taken over: binding then fails with `Errno.addressInUse`.
    ///   - loop: the loop to register on; by default the calling thread's loop, or one of
    ///     the default group's when the caller runs on no loop.
    /// - Returns: the bound socket.
    /// - Throws: ``IOError`` with operation `.bind` and `address` (for example
    ///   `Errno.addressInUse` when the path exists, `Errno.noSuchFileOrDirectory` when its
    ///   directory does not, `Errno.invalidArgument` for an IP address, or what
    ///   `unlink(2)` reported when removing a stale file), `.socket` or `.register`;
    ///   ``ReactorError/loopShutDown``. The corresponding C functions are `socket(2)` and
    ///   `bind(2)`.
    public static func bind(
        to address: SocketAddress, removingStaleFile: Bool = false, on loop: EventLoop? = nil
    ) throws -> UnixDatagramSocket {
        if removingStaleFile { try SocketCalls.removeStaleUnixSocket(at: address, type: CInt(SOCK_DGRAM.rawValue)) }
        return UnixDatagramSocket(try SocketCalls.open(.unix, type: CInt(SOCK_DGRAM.rawValue), boundTo: address, on: loop))
    }

    /// Makes a socket bound to no address: it can send, and receive once it has
    /// connected (``DatagramSocket/connect(to:)``), but its datagrams cannot be answered.
    ///
    /// - Parameter loop: the loop to register on; see ``bind(to:removingStaleFile:on:)``.
    /// - Returns: the socket.
    /// - Throws: ``IOError`` with operation `.socket` or `.register`;
    ///   ``ReactorError/loopShutDown``. The corresponding C function is `socket(2)`.
    public static func unbound(on loop: EventLoop? = nil) throws -> UnixDatagramSocket {
        UnixDatagramSocket(try SocketCalls.open(.unix, type: CInt(SOCK_DGRAM.rawValue), boundTo: nil, on: loop))
    }

    /// Makes two sockets connected to each other, both registered on one loop.
    ///
    /// Neither has an address: each one's datagrams come from `unix:`, and a send needs
    /// no destination.
    ///
    /// - Parameter loop: the loop to register both on; see ``bind(to:removingStaleFile:on:)``.
    /// - Returns: the two sockets.
    /// - Throws: ``IOError`` with operation `.create` (for example `Errno.tooManyOpenFiles`)
    ///   or `.register`; ``ReactorError/loopShutDown``. The corresponding C function is
    ///   `socketpair(2)`, with `SOCK_NONBLOCK | SOCK_CLOEXEC`.
    public static func pair(on loop: EventLoop? = nil) throws -> (UnixDatagramSocket, UnixDatagramSocket) {
        let (first, second) = try SocketCalls.pair(type: CInt(SOCK_DGRAM.rawValue), on: loop)
        return (UnixDatagramSocket(first), UnixDatagramSocket(second))
    }
}
