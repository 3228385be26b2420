#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// A connected byte-stream socket: TCP, or a Unix stream socket.
///
/// One task may read while another writes. A read after the peer's end-of-stream
/// returns 0; a write to a peer that reset the connection throws ``IOError`` with
/// `Errno.brokenPipe` or `Errno.connectionReset`, and never raises `SIGPIPE`.
public protocol StreamSocket: Socket {
    /// The address of the other end, as it was when the connection was made.
    var peerAddress: SocketAddress { get }
}

/// Which direction of a stream ``StreamSocket/shutdown(_:)`` ends.
public enum ShutdownDirection: Sendable, Hashable {
    /// No more reads: data that arrives is discarded (`SHUT_RD`).
    case reading
    /// No more writes: the peer reads end-of-stream once it has the rest (`SHUT_WR`).
    case writing
    /// Both (`SHUT_RDWR`).
    case both
}

extension StreamSocket {
    /// Reads at most `buffer.count` bytes, waiting until at least one is available.
    /// The corresponding C function is `recv(2)`.
    ///
    /// On io_uring, the first read arms one multishot receive that keeps bringing the
    /// peer's bytes into the loop's provided buffers, up to a bound, and every read copies
    /// from there, as ``chunks`` lends them. Bytes it brought and nobody read yet are
    /// dropped by ``Socket/close()``, as the kernel drops a socket's unread input.
    ///
    /// - Returns: the number of bytes read; 0 once the peer has shut down its writing side.
    /// - Throws: ``IOError`` with operation `.receive` and the peer's address (for example
    ///   `Errno.connectionReset`); `CancellationError`; ``ReactorError/closed``,
    ///   ``ReactorError/loopShutDown``, ``ReactorError/busy``.
    nonisolated(nonsending) public func read(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
        try await descriptor.readSome(into: buffer, .socket, as: .receive, peer: peerAddress)
    }

    /// Reads at most `buffer.count` bytes into `buffer`. See ``read(into:)-(UnsafeMutableRawBufferPointer)``.
    nonisolated(nonsending) public func read(into buffer: inout [UInt8]) async throws -> Int {
        try await descriptor.readSome(into: &buffer, .socket, as: .receive, peer: peerAddress)
    }

    /// The bytes the peer sends, as chunks in buffers the loop lends only while the caller
    /// handles them: a connection that waits for data holds no buffer. Each chunk is what
    /// one `recv(2)` brought; the sequence ends once the peer shuts down its writing side.
    ///
    /// ```swift
    /// for try await chunk in connection.chunks { try await connection.write(chunk) }
    /// ```
    ///
    /// Iterate on the socket's ``Socket/eventLoop``; see ``ReceivedChunks``. Errors are
    /// those of ``read(into:)-(UnsafeMutableRawBufferPointer)``.
    public var chunks: ReceivedChunks {
        ReceivedChunks(descriptor, .socket, as: .receive, peer: peerAddress)
    }

    /// Reads exactly `buffer.count` bytes, waiting for as many reads as that takes.
    ///
    /// - Throws: ``ReactorError/endOfStream`` if the peer ends the stream first (what
    ///   arrived is in the buffer's prefix); otherwise as ``read(into:)-(UnsafeMutableRawBufferPointer)``.
    nonisolated(nonsending) public func read(exactly buffer: UnsafeMutableRawBufferPointer) async throws {
        var filled = 0
        while filled < buffer.count {
            let count = try await read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
            if count == 0 { throw ReactorError.endOfStream }
            filled += count
        }
    }

    /// Reads exactly `count` bytes. See ``read(exactly:)-(UnsafeMutableRawBufferPointer)``.
    nonisolated(nonsending) public func read(exactly count: Int) async throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        // `bytes` is ours alone and keeps its size until the reads return: its storage
        // stays where it is.
        let storage = bytes.withUnsafeMutableBytes { $0 }
        try await read(exactly: storage)
        return bytes
    }

    /// Writes all of `bytes`, waiting whenever the socket's send buffer is full.
    /// The corresponding C function is `send(2)` with `MSG_NOSIGNAL`.
    ///
    /// On io_uring, called on the socket's loop while that loop has other work queued, a
    /// write of up to 16 KiB may return before its bytes reach the kernel: the loop
    /// copies them and sends them with its next submission, as `send(2)` copies into the
    /// socket's buffer, and the caller goes on without waiting for that turn. Until they
    /// are sent, the next write on the socket waits, and a ``shutdown(_:)`` of the
    /// writing side follows them. An error the kernel reports for them is thrown by every
    /// later write. Closing the socket lets them go out as long as the peer takes them
    /// within 30 seconds, as the socket's own buffer drains after `close(2)`.
    ///
    /// - Throws: ``IOError`` with operation `.send` and the peer's address
    ///   (`Errno.brokenPipe`, `Errno.connectionReset`); `CancellationError`,
    ///   ``ReactorError/closed``, ``ReactorError/loopShutDown``, ``ReactorError/busy``.
    ///   When it throws, a prefix of `bytes` may have been sent.
    nonisolated(nonsending) public func write(_ bytes: UnsafeRawBufferPointer) async throws {
        try await descriptor.writeAll(bytes, .socket, as: .send, peer: peerAddress)
    }

    /// Writes all of `bytes` (an `Array`, `ArraySlice`, or any collection of bytes).
    /// See ``write(_:)-(UnsafeRawBufferPointer)``.
    nonisolated(nonsending) public func write(_ bytes: some Collection<UInt8>) async throws {
        try await descriptor.writeAll(bytes, .socket, as: .send, peer: peerAddress)
    }

    /// Writes all of `chunk`'s bytes: what echoing a chunk of ``chunks`` takes, without
    /// the generic path of ``write(_:)-(some Collection<UInt8>)``. See
    /// ``write(_:)-(UnsafeRawBufferPointer)``. Traps if the chunk is no longer valid.
    nonisolated(nonsending) public func write(_ chunk: ReceivedChunk) async throws {
        try await descriptor.writeAll(chunk.bytes, .socket, as: .send, peer: peerAddress)
    }

    /// Writes all of several buffers, in order, with as few syscalls as the socket
    /// allows (a gathered write). The corresponding C function is `sendmsg(2)`.
    ///
    /// - Throws: as ``write(_:)-(UnsafeRawBufferPointer)``.
    nonisolated(nonsending) public func write(gathering buffers: [UnsafeRawBufferPointer]) async throws {
        var first = 0
        var offset = 0
        let limit = min(buffers.count, 1_024)
        while first < buffers.count {
            let (start, skip) = (first, offset)
            let sent = try await descriptor.perform(.writable, as: .send, address: peerAddress) { (fd) throws(Errno) in
                try withUnsafeTemporaryAllocation(of: iovec.self, capacity: limit) { (vectors) throws(Errno) in
                    let count = min(buffers.count - start, limit)
                    for index in 0..<count {
                        let buffer = buffers[start + index]
                        let skipped = index == 0 ? skip : 0
                        vectors[index] = iovec(
                            iov_base: UnsafeMutableRawPointer(mutating: buffer.baseAddress.map { $0 + skipped }),
                            iov_len: buffer.count - skipped)
                    }
                    var message = msghdr()
                    message.msg_iov = vectors.baseAddress
                    message.msg_iovlen = count
                    return try valueOrErrno { sendmsg(fd, &message, CInt(MSG_NOSIGNAL)) }
                }
            }
            // Advance past what was sent: whole buffers, then into the next one.
            var remaining = sent
            while first < buffers.count, remaining >= buffers[first].count - offset {
                remaining -= buffers[first].count - offset
                first += 1
                offset = 0
            }
            offset += remaining
        }
    }

    /// Ends one or both directions of the connection; see ``ShutdownDirection``.
    /// The corresponding C function is `shutdown(2)`.
    ///
    /// On io_uring too this is the `shutdown(2)` syscall, not a queued operation: it runs
    /// when called, after every write the caller has awaited, and its error is thrown here.
    /// The one exception is a shutdown of the writing side while the loop still sends
    /// a write that returned before its bytes reached the kernel (see
    /// ``write(_:)-(UnsafeRawBufferPointer)``): it runs once they have, and an error it
    /// meets is not reported (the peer is gone, which the next read or write says).
    ///
    /// - Throws: ``IOError`` with operation `.shutdown` (`Errno.notConnected` if the peer
    ///   is already gone).
    public func shutdown(_ direction: ShutdownDirection) throws {
        let how: CInt =
            switch direction {
            case .reading: CInt(SHUT_RD)
            case .writing: CInt(SHUT_WR)
            case .both: CInt(SHUT_RDWR)
            }
        // Not an io_uring SHUTDOWN: queued for the loop's next wait, its error (ENOTCONN)
        // could only be thrown by an async call, and this one is synchronous. A write the
        // caller awaited has had its final completion, so the syscall cannot overtake it;
        // one that went behind the caller takes the shutdown of its side along.
        if how != CInt(SHUT_RD), descriptor.io.deferShutdown(how) { return }
        do {
            _ = try valueOrErrno { shutdownSocket(descriptor.fileDescriptor.rawValue, how) }
        } catch {
            throw IOError(.shutdown, error, address: peerAddress)
        }
    }
}

/// `shutdown(2)`, which the method of the same name hides inside the extension.
private func shutdownSocket(_ fd: CInt, _ how: CInt) -> CInt { shutdown(fd, how) }
