/// The one buffer a ``ReceivedChunks`` iterator may hold at a time, and the
/// generation that tells a live ``ReceivedChunk`` from one whose buffer went back.
///
/// Lifecycle of the buffer, on the loop's thread:
///
/// 1. idle: `buffer` is nil while the iterator waits for data;
/// 2. ``borrow()`` takes one from the pool just before the read syscall; on io_uring,
///    ``adopt(_:at:)`` takes the buffer the kernel filled (a provided buffer, or one the
///    receive queue copied an excess into) instead;
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
    /// Where the bytes of the buffer lent now start, if one is.
    private(set) var buffer: UnsafeMutableRawPointer?
    /// Bumped each time the buffer goes back.
    private(set) var generation: UInt64 = 0
    /// The buffer lent now, as it goes back.
    private var lent: LentBuffer?
    /// The receive queue whose multishot receive this iteration started (io_uring): the
    /// iteration's end stops it.
    var receiving: ReceiveQueue?
    /// The stream the iteration reads: kept here, not in the iterator, whose frame every
    /// wait for bytes holds.
    let chunks: ReceivedChunks

    init(for chunks: ReceivedChunks) {
        self.chunks = chunks
        loop = chunks.source.eventLoop
        pool = loop.buffers
    }

    deinit {
        giveBack()
        receiving?.stop(for: self)
    }

    /// Takes a pool buffer of ``BufferPool/bufferSize`` bytes. Traps unless it runs on
    /// the loop's thread, with no buffer lent.
    func borrow() -> UnsafeMutableRawPointer {
        precondition(
            loop.isCurrent,
            "ReceivedChunks is iterated on its descriptor's loop (\(loop.name)), whose buffers it borrows; run the task with Task(executorPreference: eventLoop)")
        precondition(buffer == nil, "a buffer lease lends one buffer at a time")
        let borrowed = pool.borrow()
        adopt(.pool(borrowed), at: borrowed)
        return borrowed
    }

    /// Holds `lent`, whose bytes start at `start`, until ``giveBack()``.
    func adopt(_ lent: LentBuffer, at start: UnsafeMutableRawPointer) {
        precondition(buffer == nil, "a buffer lease lends one buffer at a time")
        buffer = start
        self.lent = lent
    }

    /// Returns the lent buffer, if any, to the pool (or the kernel's ring), and ends the
    /// chunks made from it.
    func giveBack() {
        guard let returned = lent else { return }
        lent = nil
        buffer = nil
        generation &+= 1
        loop.giveBack(returned)
    }
}
