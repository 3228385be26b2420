#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// A TCP connection.
///
/// ```swift
/// let stream = try await TCPStream.connect(host: "example.com", port: 80, timeout: .seconds(5))
/// try await stream.write(Array("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n".utf8))
/// var buffer = [UInt8](repeating: 0, count: 4096)
/// let count = try await stream.read(into: &buffer)
/// ```
///
/// Reading, writing and shutting down come from ``StreamSocket``; options such as
/// ``SocketOption/noDelay`` from ``Socket``.
public final class TCPStream: StreamSocket {
    /// The registered socket.
    public let descriptor: AsyncFD
    /// The address of the other end, as it was when the connection was made.
    public let peerAddress: SocketAddress

    init(descriptor: AsyncFD, peerAddress: SocketAddress) {
        self.descriptor = descriptor
        self.peerAddress = peerAddress
    }

    /// Connects to `address`.
    ///
    /// - Parameters:
    ///   - address: an IPv4 or IPv6 address and port.
    ///   - timeout: how long the connect may take; nil leaves it to the kernel (about two
    ///     minutes on Linux).
    ///   - loop: the loop to register on; by default the calling thread's, or a default-group loop.
    /// - Throws: ``IOError`` with operation `.connect` and `address`
    ///   (`Errno.connectionRefused`, `Errno.timedOut` when `timeout` passes,
    ///   `Errno.networkUnreachable`, ...); `CancellationError`; ``ReactorError/loopShutDown``.
    public static func connect(
        to address: SocketAddress, timeout: Duration? = nil, on loop: EventLoop? = nil
    ) async throws -> TCPStream {
        let loop = try loop ?? EventLoop.currentOrDefault()
        let descriptor = try await SocketCalls.connect(address.family, to: address, timeout: timeout, on: loop)
        return TCPStream(descriptor: descriptor, peerAddress: address)
    }

    /// Resolves `host` and connects to one of its addresses, racing them as Happy
    /// Eyeballs (RFC 8305) does: the next address is tried when the previous one fails,
    /// or after ``connectionAttemptDelay`` without an answer; the first to connect wins
    /// and the others are cancelled.
    ///
    /// - Parameters:
    ///   - host: a host name or an IP literal.
    ///   - port: the TCP port.
    ///   - timeout: how long resolving and connecting may take in all.
    ///   - loop: the loop to register on; by default the calling thread's, or a default-group loop.
    /// - Throws: ``ResolutionError`` if `host` does not resolve; the last attempt's
    ///   ``IOError`` (operation `.connect`) if none connects; ``IOError`` with
    ///   `Errno.timedOut` when `timeout` passes; `CancellationError`.
    public static func connect(
        host: String, port: UInt16, timeout: Duration? = nil, on loop: EventLoop? = nil
    ) async throws -> TCPStream {
        let loop = try loop ?? EventLoop.currentOrDefault()
        guard let timeout else { return try await race(try await DNS.resolve(host: host, port: port), on: loop) }
        do {
            return try await withTimeout(timeout, on: loop) {
                try await race(try await DNS.resolve(host: host, port: port), on: loop)
            }
        } catch is TimeoutError {
            throw IOError(.connect, .timedOut)
        }
    }

    /// How long a Happy Eyeballs attempt runs alone before the next one starts (RFC 8305 §5).
    public static let connectionAttemptDelay = Duration.milliseconds(250)

    /// What the children of a Happy Eyeballs race report.
    private enum Attempt: Sendable {
        case connected(TCPStream)
        case failed(any Error)
        /// The delay of round `round` ran out without an answer.
        case delayElapsed(round: Int)
    }

    private static func race(_ addresses: [SocketAddress], on loop: EventLoop) async throws -> TCPStream {
        try await withThrowingTaskGroup(of: Attempt.self) { group in
            var next = 0
            var running = 0
            var round = 0
            var lastError: (any Error)?
            func startNext() {
                let address = addresses[next]
                next += 1
                running += 1
                round += 1
                let current = round
                group.addTask {
                    do {
                        return .connected(try await connect(to: address, on: loop))
                    } catch {
                        return .failed(error)
                    }
                }
                if next < addresses.count {
                    group.addTask {
                        try? await loop.clock.sleep(for: connectionAttemptDelay)
                        return .delayElapsed(round: current)
                    }
                }
            }
            startNext()
            while let attempt = try await group.next() {
                switch attempt {
                case .connected(let stream):
                    group.cancelAll()
                    // An attempt that connected too, before it saw the cancellation, is closed.
                    while let late = try await group.next() {
                        if case .connected(let other) = late { try? other.close() }
                    }
                    return stream
                case .failed(let error):
                    running -= 1
                    lastError = error
                    if next < addresses.count {
                        startNext()
                    } else if running == 0 {
                        group.cancelAll()
                        throw error
                    }
                case .delayElapsed(let elapsed):
                    if elapsed == round, next < addresses.count { startNext() }
                }
            }
            // Every attempt reports before the group runs dry, so this is reached only
            // if the task was cancelled meanwhile.
            throw lastError ?? CancellationError()
        }
    }
}
