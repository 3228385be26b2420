import SystemPackage

/// The bytes of a stream (a TCP or Unix stream socket, a pipe), read into buffers the
/// event loop lends only while the caller handles them: an idle reader holds no buffer.
///
/// ```swift
/// for try await chunk in connection.chunks {        // on the connection's loop
///     try await connection.write(chunk)
/// }
/// ```
///
/// The iterator waits for the descriptor to become readable without a buffer, then
/// borrows a 16 KiB buffer from its loop's pool and reads into it; on `EAGAIN` it gives
/// the buffer back before it waits again. Each chunk holds what one read brought, and
/// stays valid until the next call to `next()` or the end of the sequence (see
/// ``ReceivedChunk``). Once the loop's pool holds enough buffers, a chunk costs no
/// allocation; making an iterator costs one.
///
/// Iterate on the descriptor's own loop: run the task with
/// `Task(executorPreference: connection.eventLoop)`, as
/// ``StreamListener/serve(on:maxConnections:_:)`` does for its handlers. The buffers are
/// that loop's, so reading on any other thread traps — a mistake to fix at the call
/// site, not a condition to handle — except that once the descriptor is closed or its
/// loop has shut down, `next()` throws ``ReactorError/closed`` or
/// ``ReactorError/loopShutDown``, as the reads do.
///
/// The sequence ends when the peer shuts down its writing side (a pipe's writer closes).
/// An iterator that threw (a timeout, a cancellation) is finished too: to read on, make
/// a new one.
public struct ReceivedChunks: AsyncSequence, Sendable {
    /// A chunk of the stream.
    public typealias Element = ReceivedChunk

    private let source: AsyncFD
    private let kind: StreamKind
    private let operation: IOError.Operation
    private let peer: SocketAddress?

    /// - Parameters:
    ///   - kind: how the stream is read.
    ///   - operation: what errors call the read (`.receive`, `.read`).
    ///   - peer: the address errors name.
    init(_ source: AsyncFD, _ kind: StreamKind, as operation: IOError.Operation, peer: SocketAddress? = nil) {
        self.source = source
        self.kind = kind
        self.operation = operation
        self.peer = peer
    }

    /// Starts an iteration; it borrows nothing until it reads.
    public func makeAsyncIterator() -> Iterator {
        Iterator(self)
    }

    /// Reads the chunks of a stream, one lent buffer at a time.
    public struct Iterator: AsyncIteratorProtocol {
        private let chunks: ReceivedChunks
        private let lease: BufferLease
        private var isFinished = false

        init(_ chunks: ReceivedChunks) {
            self.chunks = chunks
            lease = BufferLease(on: chunks.source.eventLoop)
        }

        /// Ends the previous chunk, then waits for the next.
        ///
        /// - Returns: the bytes of one read; nil at end-of-stream, and after the sequence
        ///   ended or threw.
        /// - Throws: ``IOError`` with the read's operation (`.receive` with the peer's
        ///   address for a socket, `.read` for a pipe), for example `Errno.connectionReset`;
        ///   `CancellationError`; ``ReactorError/closed``; ``ReactorError/loopShutDown``;
        ///   ``ReactorError/busy`` if another task reads the descriptor.
        public mutating func next() async throws -> ReceivedChunk? {
            try await advance()
        }

        /// Ends the previous chunk, then waits for the next, in the caller's isolation.
        /// See ``next()``.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> ReceivedChunk? {
            try await advance()
        }

        nonisolated(nonsending) private mutating func advance() async throws -> ReceivedChunk? {
            lease.giveBack()
            guard !isFinished else { return nil }
            // Ended by anything but a chunk: the end, or an error.
            isFinished = true
            let count = try await read()
            guard count > 0 else { return nil }
            isFinished = false
            return ReceivedChunk(lease: lease, count: count)
        }

        /// Reads once the descriptor is readable, into a buffer borrowed only for the
        /// syscall unless it brings bytes. Returns the count; 0 at end-of-stream.
        nonisolated(nonsending) private func read() async throws -> Int {
            let source = chunks.source
            #if os(Linux)
            if source.runsCompletions { return try await readProvided() }
            #endif
            let (lease, kind) = (self.lease, chunks.kind)
            let size = BufferPool.bufferSize
            return try await chunks.source.perform(
                .readable, as: chunks.operation, address: chunks.peer, drained: { $0 > 0 && $0 < size }
            ) { (fd) throws(Errno) in
                let buffer = lease.borrow()
                do throws(Errno) {
                    let count = try valueOrErrno { kind.read(fd, UnsafeMutableRawBufferPointer(start: buffer, count: size)) }
                    if count == 0 { lease.giveBack() }
                    return count
                } catch {
                    // EAGAIN included: no buffer is held while the iterator waits.
                    lease.giveBack()
                    throw error
                }
            }
        }

        #if os(Linux)
        /// On io_uring: one read whose buffer the kernel picks from its ring once bytes
        /// arrive, so that a waiting reader holds none. When the ring is empty (every
        /// buffer lent to chunks not ended yet), the read brings a pool buffer instead:
        /// the connection goes on, and the ring refills as chunks end.
        nonisolated(nonsending) private func readProvided() async throws -> Int {
            let (source, kind) = (chunks.source, chunks.kind)
            let fd = source.io.descriptor
            let completion: Completion
            do {
                completion = try await source.completion(
                    of: kind.selectingReadOperation(fd), reading: true, as: chunks.operation, address: chunks.peer)
            } catch let error as IOError where error.errno == .noBufferSpace {
                let buffer = UnsafeMutableRawBufferPointer(start: lease.borrow(), count: BufferPool.bufferSize)
                let count: Int
                do {
                    count = try await source.complete(
                        kind.readOperation(fd, buffer), reading: true, as: chunks.operation, address: chunks.peer)
                } catch {
                    lease.giveBack()
                    throw error
                }
                if count == 0 { lease.giveBack() }
                return count
            }
            guard let id = completion.providedBuffer, let buffers = source.eventLoop.reactor.completions?.providedBuffers
            else { return Int(completion.result) }
            lease.adopt(id, at: buffers.pointer(id))
            if completion.result == 0 { lease.giveBack() }
            return Int(completion.result)
        }
        #endif
    }
}

/// An iterator lends its loop's buffers, which only that loop's thread touches.
@available(*, unavailable)
extension ReceivedChunks.Iterator: Sendable {}
