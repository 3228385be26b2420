/// The one pool buffer a ``ReceivedChunks`` iterator may hold at a time, and the
/// generation that tells a live ``ReceivedChunk`` from one whose buffer went back.
///
/// Lifecycle of the buffer, on the loop's thread:
///
/// 1. idle: `buffer` is nil while the iterator waits for readability;
/// 2. ``borrow()`` takes one from the pool just before the read syscall; on io_uring,
///    ``adopt(_:at:)`` takes the provided buffer the kernel filled instead;
/// 3. on `EAGAIN`, an error or end-of-stream, ``giveBack()`` returns it at once; after a
///    read that brought bytes, it stays lent to the chunk handed out;
/// 4. the iterator's next `next()` call, or this object's `deinit` (the iterator and its
///    chunks are gone), calls ``giveBack()``.
///
/// Every ``giveBack()`` bumps ``generation``: a chunk made under an older generation traps
/// when it is read, instead of reading a buffer that another reader may be filling.
///
/// One allocation per iteration, none per chunk.
final class BufferLease: @unchecked Sendable {
    // `@unchecked Sendable`, so that the read closure of `AsyncFD.perform` may capture it:
    // only a non-Sendable iterator and its non-Sendable chunks reach it, one task at a
    // time; `borrow()` checks that it runs on the loop's thread, and `giveBack()` frees
    // the buffer instead of touching the pool when it does not.
    let loop: EventLoop
    private let pool: BufferPool
    /// The buffer lent now, if any.
    private(set) var buffer: UnsafeMutableRawPointer?
    /// Bumped each time the buffer goes back.
    private(set) var generation: UInt64 = 0
    /// The provided-buffer ID, when the buffer lent is the kernel ring's, not the pool's.
    private var provided: UInt16?

    init(on loop: EventLoop) {
        self.loop = loop
        pool = loop.buffers
    }

    deinit {
        giveBack()
    }

    /// Takes a pool buffer of ``BufferPool/bufferSize`` bytes. Traps unless it runs on
    /// the loop's thread, with no buffer lent.
    func borrow() -> UnsafeMutableRawPointer {
        precondition(
            loop.isCurrent,
            "ReceivedChunks is iterated on its descriptor's loop (\(loop.name)), whose buffers it borrows; run the task with Task(executorPreference: eventLoop)")
        precondition(buffer == nil, "a buffer lease lends one buffer at a time")
        let lent = pool.borrow()
        buffer = lent
        return lent
    }

    /// Holds provided buffer `id`, which the kernel filled at `pointer`, until ``giveBack()``.
    func adopt(_ id: UInt16, at pointer: UnsafeMutableRawPointer) {
        precondition(buffer == nil, "a buffer lease lends one buffer at a time")
        buffer = pointer
        provided = id
    }

    /// Returns the lent buffer, if any, to the pool (or the kernel's ring), and ends the
    /// chunks made from it.
    func giveBack() {
        guard let lent = buffer else { return }
        buffer = nil
        generation &+= 1
        if let id = provided {
            provided = nil
            loop.reactor.completions?.recycle(id)
            return
        }
        // The last reference, or a task that outlived its loop, may get here on another
        // thread: the free list is the loop's, so the buffer is freed instead.
        if loop.isCurrent { pool.giveBack(lent) } else { pool.discard(lent) }
    }
}
