/// An event loop's fixed-size byte buffers, lent to a reader for as long as it handles
/// what one read brought (see ``ReceivedChunks``), so that an idle connection holds none.
///
/// - Every buffer is ``bufferSize`` bytes (16 KiB: enough that one read usually takes
///   all that a burst brought, small enough that hundreds lent at once fit in a few MiB).
/// - The pool grows on demand to the number of buffers lent at once, and keeps at most
///   ``freeLimit`` of those returned (64, so 1 MiB per loop) for the next borrower; a
///   buffer returned beyond that is freed. Once the pool has grown, and the number lent
///   swings by no more than the limit, borrowing and returning allocate nothing.
/// - ``release()`` frees the kept buffers when the loop shuts down.
///
/// The free list belongs to the loop's thread: only ``BufferLease`` touches it, and only
/// after checking that it runs there. A buffer dropped on another thread is freed there
/// instead, so ``lentCount`` is the one field other threads change.
final class BufferPool {
    /// The size of every buffer, in bytes.
    static let bufferSize = 16 * 1024
    /// Where every receive buffer starts (the pool's and io_uring's provided ones): on a
    /// cache line. The kernel's copy of received bytes into malloc's 16-byte alignment
    /// took about twice as long (64 KiB echo messages: half the messages per CPU-second).
    static let alignment = 64
    /// The most returned buffers kept for reuse.
    static let freeLimit = 64

    // ---- loop thread only ----
    /// Returned buffers, bound to `UInt8`. Its capacity is reserved up front, so keeping a
    /// buffer never grows the array.
    // `@exclusivity(unchecked)`: loop thread only, and each access is one push or pop.
    @exclusivity(unchecked) private var free: [UnsafeMutableRawPointer] = []

    private let lent = LoopCounter()

    init() {
        free.reserveCapacity(Self.freeLimit)
    }

    deinit {
        release()
    }

    /// How many buffers are lent out now.
    var lentCount: Int { lent.value }

    /// How many returned buffers are kept for reuse now.
    var freeCount: Int { free.count }

    /// Lends a buffer of ``bufferSize`` bytes, bound to `UInt8`. Loop thread only.
    ///
    /// - Parameter fillingUp: when no returned buffer is kept, allocate as many as the
    ///   pool keeps at once, instead of one: for a borrower whose number of buffers out
    ///   at once swings up to ``freeLimit``, which then allocates only this once.
    func borrow(fillingUp: Bool = false) -> UnsafeMutableRawPointer {
        lent.increment()
        if let buffer = free.popLast() { return buffer }
        if fillingUp {
            while free.count < Self.freeLimit - lentCount { free.append(Self.allocate()) }
        }
        return Self.allocate()
    }

    private static func allocate() -> UnsafeMutableRawPointer {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: alignment)
        buffer.bindMemory(to: UInt8.self, capacity: bufferSize)
        return buffer
    }

    /// Takes back a buffer from ``borrow()``, keeping it unless ``freeLimit`` are kept
    /// already. Loop thread only.
    func giveBack(_ buffer: UnsafeMutableRawPointer) {
        lent.decrement()
        if free.count < Self.freeLimit {
            free.append(buffer)
        } else {
            buffer.deallocate()
        }
    }

    /// Frees a buffer from ``borrow()`` that was dropped away from the loop's thread,
    /// which may not touch the free list. Any thread.
    func discard(_ buffer: UnsafeMutableRawPointer) {
        lent.decrementElsewhere()
        buffer.deallocate()
    }

    /// Frees the kept buffers. Loop thread only, as the loop stops: buffers still lent
    /// come back later on other threads, which free them (``discard(_:)``).
    func release() {
        for buffer in free { buffer.deallocate() }
        free.removeAll(keepingCapacity: true)
    }
}
