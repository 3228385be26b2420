import CReactor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// A connected Unix-domain stream socket.
///
/// ```swift
/// let stream = try await UnixStream.connect(to: .unix(path: "/run/app.sock"))
/// let peer = try stream.peerCredentials     // who is on the other end
/// ```
///
/// Reading, writing and shutting down come from ``StreamSocket``.
public final class UnixStream: StreamSocket {
    /// The registered socket.
    public let descriptor: AsyncFD
    /// The address of the other end, as it was when the connection was made.
    public let peerAddress: SocketAddress

    init(descriptor: AsyncFD, peerAddress: SocketAddress) {
        self.descriptor = descriptor
        self.peerAddress = peerAddress
    }

    /// Connects to the listener at `address`, a path or an abstract name.
    ///
    /// A Unix connect does not wait for the peer to accept; when the listener's backlog
    /// is full the kernel refuses at once (`EAGAIN`), and this retries, backing off from
    /// 1 ms to 100 ms, until `timeout` passes.
    ///
    /// - Parameters:
    ///   - address: a Unix path or abstract name.
    ///   - timeout: how long a full backlog may keep the connect waiting; nil: no limit.
    ///   - loop: the loop to register on; by default the calling thread's, or a default-group loop.
    /// - Throws: ``IOError`` with operation `.connect` and `address`
    ///   (`Errno.noSuchFileOrDirectory`, `Errno.connectionRefused` when nobody listens,
    ///   `Errno.timedOut`); `CancellationError`; ``ReactorError/loopShutDown``.
    public static func connect(
        to address: SocketAddress, timeout: Duration? = nil, on loop: EventLoop? = nil
    ) async throws -> UnixStream {
        let loop = try loop ?? EventLoop.currentOrDefault()
        let deadline = timeout.map { loop.clock.now.advanced(by: $0) }
        var backoff = Duration.milliseconds(1)
        while true {
            do {
                let descriptor = try await SocketCalls.connect(.unix, to: address, timeout: nil, on: loop)
                return UnixStream(descriptor: descriptor, peerAddress: address)
            } catch let error as IOError where error.errno == .resourceTemporarilyUnavailable {
                if let deadline, loop.clock.now.advanced(by: backoff) > deadline {
                    throw IOError(.connect, .timedOut, address: address)
                }
                try await loop.clock.sleep(for: backoff)
                backoff = min(backoff * 2, .milliseconds(100))
            }
        }
    }

    /// Makes two streams connected to each other, both registered on one loop. Neither
    /// has an address (`unix:`). The corresponding C function is `socketpair(2)`.
    ///
    /// - Throws: ``IOError`` with operation `.create` or `.register`; ``ReactorError/loopShutDown``.
    public static func pair(on loop: EventLoop? = nil) throws -> (UnixStream, UnixStream) {
        let (first, second) = try SocketCalls.pair(type: CInt(SOCK_STREAM.rawValue), on: loop)
        return (UnixStream(descriptor: first, peerAddress: .unnamedUnix), UnixStream(descriptor: second, peerAddress: .unnamedUnix))
    }

    /// The process, user and group on the other end, as the kernel recorded them when
    /// the connection was made (`SO_PEERCRED`).
    ///
    /// - Throws: ``IOError`` with operation `.getOption`.
    public var peerCredentials: PeerCredentials {
        get throws {
            var credentials = PeerCredentials(processID: 0, userID: 0, groupID: 0)
            guard creactor_peer_credentials(
                descriptor.fileDescriptor.rawValue, &credentials.processID, &credentials.userID, &credentials.groupID) == 0
            else { throw IOError(.getOption, Errno(rawValue: errno), address: peerAddress) }
            return credentials
        }
    }
}

/// Who is on the other end of a Unix stream: see ``UnixStream/peerCredentials``.
public struct PeerCredentials: Hashable, Sendable {
    /// The peer's process ID (`pid_t`).
    public var processID: Int32
    /// The peer's effective user ID (`uid_t`).
    public var userID: UInt32
    /// The peer's effective group ID (`gid_t`).
    public var groupID: UInt32
}
