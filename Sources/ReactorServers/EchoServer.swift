import Reactor

/// The echo protocol (RFC 862) over a stream: every byte read is written back, in order.
///
/// ```swift
/// let server = try TCPServer(bindingTo: .ipv4(127, 0, 0, 1, port: 7000), on: group.loops) { connection in
///     try await EchoServer.handle(connection)
/// }
/// ```
public enum EchoServer {
    /// Echoes `connection` until the peer shuts down its writing side, then returns.
    ///
    /// Each chunk read is written back whole before the next read, so when the peer
    /// half-closes everything it sent has been echoed, and the caller may close the
    /// connection at once (``StreamListener/serve(on:maxConnections:_:)`` does). A peer that
    /// stops reading stalls only its own connection: this task waits to write, and reads
    /// nothing more, while the loop serves everyone else.
    ///
    /// The bytes are read through ``StreamSocket/chunks``: a buffer of the loop's pool is
    /// lent to the connection from a read until its bytes are written back, so a connection
    /// that waits for data holds no buffer, and echoing a message allocates nothing. Run it
    /// on the connection's loop (``StreamListener/serve(on:maxConnections:_:)`` and
    /// ``TCPServer`` do): the buffers are that loop's, and its reads and writes resume this
    /// task without a thread hop.
    ///
    /// - Parameter connection: a connected stream; it is left open.
    /// - Throws: what the connection's chunks and `write` throw, for example ``IOError``
    ///   with `Errno.connectionReset` when the peer resets the connection.
    nonisolated(nonsending) public static func handle<Connection: StreamSocket>(_ connection: Connection) async throws {
        // `next()` called directly, not `for try await`: see `ReceivedChunks.Iterator.next()`.
        var chunks = connection.chunks.makeAsyncIterator()
        while let chunk = try await chunks.next() {
            try await connection.write(chunk)
        }
    }
}
