import Reactor

/// The echo protocol (RFC 862) over a stream: every byte read is written back, in order.
///
/// ```swift
/// let server = try TCPServer(bindingTo: .ipv4(127, 0, 0, 1, port: 7000), on: group.loops) { connection in
///     try await EchoServer.handle(connection)
/// }
/// ```
public enum EchoServer {
    /// The read buffer of a connection, in bytes, unless ``handle(_:bufferSize:)`` is told otherwise.
    public static let defaultBufferSize = 16 * 1024

    /// Echoes `connection` until the peer shuts down its writing side, then returns.
    ///
    /// Each read is written back whole before the next read, so when the peer half-closes
    /// everything it sent has been echoed, and the caller may close the connection at once
    /// (``StreamListener/serve(on:maxConnections:_:)`` does). A peer that stops reading
    /// stalls only its own connection: this task waits to write, and reads nothing more,
    /// while the loop serves everyone else.
    ///
    /// The buffer is allocated once for the connection; echoing a message allocates
    /// nothing. Run it on the connection's loop (``StreamListener/serve(on:maxConnections:_:)``
    /// and ``TCPServer`` do), so that its reads and writes resume it without a thread hop.
    ///
    /// - Parameters:
    ///   - connection: a connected stream; it is left open.
    ///   - bufferSize: the most bytes read, and written back, at once.
    /// - Throws: what the connection's `read` and `write` throw, for example ``IOError``
    ///   with `Errno.connectionReset` when the peer resets the connection.
    public static func handle<Connection: StreamSocket>(
        _ connection: Connection, bufferSize: Int = defaultBufferSize
    ) async throws {
        precondition(bufferSize > 0, "an echo buffer holds at least one byte")
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
        // The reads and writes below return only once the kernel is done with the
        // buffer, so it may go when this function ends, however it ends.
        defer { buffer.deallocate() }
        while true {
            let count = try await connection.read(into: buffer)
            if count == 0 { return }
            try await connection.write(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
    }
}
