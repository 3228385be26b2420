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
/// On a readiness backend (epoll, poll), the iterator waits for the descriptor to become
/// readable without a buffer, then borrows a 16 KiB buffer from its loop's pool and reads
/// into it; on `EAGAIN` it gives the buffer back before it waits again. Each chunk holds
/// what one read brought, and stays valid until the next call to `next()` or the end of
/// the sequence (see ``ReceivedChunk``). Once the loop's pool holds enough buffers, a
/// chunk costs no allocation; making an iterator costs one.
///
/// On io_uring, a socket's iterator arms one multishot receive without a buffer: each
/// time bytes arrive, the kernel puts them in the loop's ring of 64 KiB provided buffers
/// (from Linux 6.12 many small receives share one buffer; before, each takes a whole
/// one), and the chunk waits in the connection's queue until `next()` takes it, with no
/// submission and no suspension. A stream of messages costs one submission. Up to 4
/// chunks of ring memory queue per connection; a slow reader's receive is cancelled there,
/// so that its sender waits and the loop's other connections keep their buffers, and armed
/// again once the reader has taken them. When the ring runs dry, one read takes a pool
/// buffer and the receive is armed again. A pipe's iterator submits one read per chunk,
/// into the ring, or a pool buffer when the ring is empty.
///
/// When the iteration ends before the stream does (it threw, or was dropped), its receive
/// is cancelled; a throwing `next()` returns only once the kernel ended it. Bytes received
/// by then are copied out of the ring, whose buffers go back, and come first to the next
/// iterator or read: none is lost. Closing the descriptor, or shutting its loop down, drops
/// them and gives every buffer back.
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
/// a new one. While an iterator lives on io_uring, its receive holds the socket's reading
/// side: a `read(into:)` meanwhile takes only bytes already queued, and otherwise throws
/// ``ReactorError/busy``.
public struct ReceivedChunks: AsyncSequence, Sendable {
    /// A chunk of the stream.
    public typealias Element = ReceivedChunk

    let source: AsyncFD
    fileprivate let kind: StreamKind
    fileprivate let operation: IOError.Operation
    fileprivate let peer: SocketAddress?

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

    /// The error of a read that failed with `errno`.
    // Never inlined: the address it copies stays out of the frame of every wait for bytes.
    @inline(never)
    fileprivate func error(_ errno: Int32) -> IOError {
        IOError(operation, Errno(rawValue: errno), address: peer)
    }

    /// Starts an iteration; it borrows nothing until it reads.
    public func makeAsyncIterator() -> Iterator {
        Iterator(self)
    }

    /// Reads the chunks of a stream, one lent buffer at a time.
    public struct Iterator: AsyncIteratorProtocol {
        private let lease: BufferLease
        private var isFinished = false
        private var chunks: ReceivedChunks { lease.chunks }

        init(_ chunks: ReceivedChunks) {
            lease = BufferLease(for: chunks)
        }

        /// Ends the previous chunk, then waits for the next, in the caller's isolation.
        ///
        /// Called directly, `while let chunk = try await iterator.next()`, it costs no
        /// executor switch. A `for try await` loop calls ``next(isolation:)`` instead, and
        /// the Swift runtime switches back to the loop's isolation after each call: for a
        /// task with an executor preference, that is a lock in the runtime per chunk.
        ///
        /// - Returns: the bytes of one read; nil at end-of-stream, and after the sequence
        ///   ended or threw.
        /// - Throws: ``IOError`` with the read's operation (`.receive` with the peer's
        ///   address for a socket, `.read` for a pipe), for example `Errno.connectionReset`;
        ///   `CancellationError`; ``ReactorError/closed``; ``ReactorError/loopShutDown``;
        ///   ``ReactorError/busy`` if another task reads the descriptor.
        nonisolated(nonsending) public mutating func next() async throws -> ReceivedChunk? {
            lease.giveBack()
            guard !isFinished else { return nil }
            // Ended by anything but a chunk: the end, or an error.
            isFinished = true
            let count = try await read()
            guard count > 0 else { return nil }
            isFinished = false
            return ReceivedChunk(lease: lease, count: count)
        }

        /// Ends the previous chunk, then waits for the next, in the caller's isolation.
        /// See ``next()``.
        // Inlinable: inlined into a `for try await` loop, its switch to `actor` on entry,
        // which is the caller's own isolation, folds away.
        @inlinable
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> ReceivedChunk? {
            try await next()
        }

        /// Reads once the descriptor is readable, into a buffer borrowed only for the
        /// syscall unless it brings bytes. Returns the count; 0 at end-of-stream.
        // Inlined into `next()`: a task keeps the task-allocator memory its deepest call
        // ever took, and one frame fewer in every wait for bytes lowers that.
        @inline(__always)
        nonisolated(nonsending) private func read() async throws -> Int {
            let source = chunks.source
            #if os(Linux)
            if source.runsCompletions {
                if chunks.kind == .socket && !ReceiveQueue.isRefused.load(ordering: .relaxed) {
                    return try await receiveQueued()
                }
                return try await readProvided()
            }
            #endif
            return try await readReady()
        }

        /// On a readiness backend: one read once the descriptor is readable, into a pool
        /// buffer borrowed only for the syscall unless it brings bytes.
        // Never inlined: its frame stays out of `next()`, and so out of every io_uring
        // wait for bytes, whose frames then fit one task-allocator slab.
        @inline(never)
        nonisolated(nonsending) private func readReady() async throws -> Int {
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
            // Only a completion that brought bytes names a buffer.
            guard let id = completion.providedBuffer, let buffers = source.eventLoop.completions?.providedBuffers
            else { return Int(completion.result) }
            lease.adopt(.provided(id), at: buffers.bytes(of: completion))
            return Int(completion.result)
        }

        /// On io_uring, for a socket: the next bytes of the descriptor's ``ReceiveQueue``,
        /// which one multishot receive fills while this iteration lasts. Bytes already
        /// queued cost no submission and no suspension; an empty queue arms the multishot
        /// if it is not, and waits. After the ring ran dry, one read goes through
        /// ``readProvided()`` (a pool buffer if the ring is still empty) before the
        /// multishot is armed again.
        ///
        /// A throw (cancellation included) stops the multishot and returns only once it
        /// ended: bytes it received stay queued for the next reader, none is lost.
        // Inlined into `next()`, for the reason `read()` gives.
        @inline(__always)
        nonisolated(nonsending) private func receiveQueued() async throws -> Int {
            let source = chunks.source
            let queue: ReceiveQueue
            if let receiving = lease.receiving {
                queue = receiving
            } else {
                queue = source.receiveQueue
                lease.receiving = queue
            }
            do {
                while true {
                    if let error = AsyncFD.unusable(source.io.snapshot()) { throw error }
                    if let count = queue.lend(to: lease) { return count }
                    if let end = queue.takeEnd() {
                        guard end < 0 else { return 0 }
                        throw chunks.error(-end)
                    }
                    if !queue.isArmed {
                        if queue.takeRanDry() || ReceiveQueue.isRefused.load(ordering: .relaxed) {
                            return try await readProvided()
                        }
                        try queue.arm(for: lease)
                    }
                    try await queue.waitForBytes()
                }
            } catch {
                if queue.stop(for: lease) { await queue.waitUntilEnded() }
                throw error
            }
        }
        #endif
    }
}

/// An iterator lends its loop's buffers, which only that loop's thread touches.
@available(*, unavailable)
extension ReceivedChunks.Iterator: Sendable {}
