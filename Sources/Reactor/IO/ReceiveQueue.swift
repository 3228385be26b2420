#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import DequeModule
import Synchronization
import SystemPackage

/// What a multishot receive (io_uring) brought a stream socket, queued until its reader
/// takes it: one submission receives message after message, and a reader that finds
/// bytes queued takes them with no submission and no suspension.
///
/// Loop thread only, but for ``descriptorClosed()`` and `deinit`. Lifecycle:
///
/// 1. idle: nothing armed. A reader that finds the queue empty arms the multishot
///    (``arm(for:)``), which holds the descriptor's reading claim and counts as an
///    operation on it, and waits on the descriptor's reader ``Waiter``.
/// 2. armed: each completion queues the slice of ring memory the kernel filled (a whole
///    provided buffer, or on Linux 6.12 the part of one that this receive took) and wakes
///    the reader. End-of-stream and errors are queued behind the bytes, as the end.
/// 3. the multishot ends with a completion without `IORING_CQE_F_MORE`: at
///    end-of-stream, on an error, when the provided ring ran dry (`ENOBUFS`: the next
///    reader reads into a pool buffer once, then arms again), when the kernel chose to,
///    or after a cancel. Its reading claim and operation end there, so a descriptor
///    closed meanwhile is released only then (DESIGN §3.9). The next reader that
///    finds the queue empty arms again.
///
/// Plain reads (`read(into:)` on a stream socket) arm it too (``armForReads()``) and copy
/// what it queued into their buffers; no iteration ends that one.
///
/// A cancel comes from: the bound (below); the end of the iteration that armed it
/// (``stop(for:)``: the iterator threw or was dropped); ``AsyncFD/close()``; the loop's
/// shutdown.
///
/// No byte the kernel received is lost. When the iteration ends, the bytes queued, and
/// those that arrive until the multishot's last completion, are copied out of the ring,
/// whose slices go back at once, and stay queued for the next iterator or read
/// (``copyQueued(into:)``). A close or a shutdown drops them, and gives everything back.
final class ReceiveQueue: CompletionSink, @unchecked Sendable {
    // `@unchecked Sendable`: every field is touched on the loop's thread only, except by
    // `descriptorClosed()`, which hands the discarding to the loop, and `deinit`, which
    // runs when nothing else can reach the queue.

    /// The most slices of ring memory one descriptor's queue holds: 4. A slice is what one
    /// completion brought, up to a whole buffer (64 KiB), so a streaming sender gets up to
    /// 256 KiB ahead, more than a socket's default send buffer (208 KiB), and a reader that
    /// keeps up never stops the multishot. Each slice lies in one buffer and keeps it from
    /// the kernel until it comes back, so a queue holds at most 4 buffers, a 32nd of the
    /// loop's ring (128): slow readers cannot starve the loop's other connections before
    /// its ring runs dry, whether a buffer holds one message or a thousand.
    ///
    /// The multishot is cancelled once the queue holds this many; slices the kernel
    /// filled before the cancel took effect are copied out and given back to the ring at
    /// once, so the bound holds for the ring's memory.
    static let bound = 4

    /// Bytes waiting for the reader, in a slice of ring memory or a copy the queue holds.
    struct Entry {
        let buffer: LentBuffer
        var start: UnsafeMutableRawPointer
        var count: Int
    }

    // `@exclusivity(unchecked)`: loop thread only, and nothing an access calls reaches
    // the queue again; the runtime's check of that only costs.
    @exclusivity(unchecked) private var entries = Deque<Entry>()
    /// Slices of ring memory in `entries`: at most ``bound``.
    private(set) var ringSlices = 0
    /// The most slices of ring memory `entries` ever held (for tests).
    private(set) var mostRingSlices = 0
    /// How the stream ended, behind the entries: 0 at end-of-stream, or a negated errno.
    private var end: Int32?
    /// The last multishot ended because the ring ran dry.
    private var ranDry = false
    /// The multishot in flight, if any, and whether it was asked to stop.
    private var armed: OperationID?
    private var isStopping = false
    /// The lease of the iteration that last armed the multishot, until it ends; while
    /// there is none, bytes that arrive are copied out of the ring.
    private var owner: ObjectIdentifier?
    /// A task that waits for the multishot's last completion.
    private var ending: UnsafeContinuation<Void, Never>?
    /// How many multishots were started (for tests: a stream of messages needs one).
    private(set) var armings = 0
    private let io: ScheduledIO
    private let descriptor: FileDescriptor
    private let loop: EventLoop
    // The descriptor's reader and the loop's provided buffers, held directly: reached
    // through `io` and `loop`, each completion cost two more retains and releases.
    private let reader: Waiter
    private let ring: ProvidedBuffers

    /// Set once a kernel refused multishot receive (`EINVAL`, before Linux 6.0): chunks
    /// then take one receive per chunk.
    static let isRefused = Atomic<Bool>(false)

    init(io: ScheduledIO, descriptor: FileDescriptor, loop: EventLoop) {
        self.io = io
        self.descriptor = descriptor
        self.loop = loop
        reader = io.reader
        guard let completions = loop.completions else { preconditionFailure("a receive queue needs a completion backend") }
        ring = completions.providedBuffers
    }

    deinit {
        discardQueued()
    }

    /// Waits on the descriptor's reader until a completion or a close wakes it.
    @inline(__always)
    nonisolated(nonsending) func waitForBytes() async throws {
        try await reader.park()
    }

    /// Whether a multishot receive is in flight.
    var isArmed: Bool { armed != nil }

    /// Lends the oldest bytes queued to `lease`: a slice of ring memory as it is; bytes the
    /// queue copied out of the ring are the queue's own, and copied again into a pool
    /// buffer. Returns their count, or nil if nothing is queued.
    func lend(to lease: BufferLease) -> Int? {
        guard let head = entries.first else { return nil }
        if case .copy = head.buffer {
            return copyOut(into: UnsafeMutableRawBufferPointer(start: lease.borrow(), count: BufferPool.bufferSize))
        }
        _ = take()
        lease.adopt(head.buffer, at: head.start)
        return head.count
    }

    /// Takes the oldest bytes queued.
    private func take() -> Entry? {
        guard let entry = entries.popFirst() else { return nil }
        if case .provided = entry.buffer { ringSlices -= 1 }
        return entry
    }

    /// Takes how the stream ended, once every byte before it was taken.
    func takeEnd() -> Int32? {
        guard entries.isEmpty else { return nil }
        defer { end = nil }
        return end
    }

    /// Whether the last multishot ended on an empty ring; asking clears it.
    func takeRanDry() -> Bool {
        defer { ranDry = false }
        return ranDry
    }

    /// Starts a multishot receive for the iteration that holds `lease`.
    ///
    /// - Throws: ``ReactorError/busy`` if another read is in flight; ``ReactorError/closed``,
    ///   ``ReactorError/loopShutDown``.
    func arm(for lease: BufferLease) throws(ReactorError) {
        try arm(owner: ObjectIdentifier(lease))
    }

    /// Starts a multishot receive for the socket's plain reads (`read(into:)`), which
    /// copy what it queued. No iteration ends it: it runs until the bound, the stream's
    /// end, an error, or the close.
    ///
    /// - Throws: as ``arm(for:)``.
    func armForReads() throws(ReactorError) {
        try arm(owner: ObjectIdentifier(self))
    }

    private func arm(owner: ObjectIdentifier) throws(ReactorError) {
        _ = io.beginOperation()
        do {
            armed = try loop.reactor.startMultishot(.receiveMultishot(io.descriptor), on: io, sink: self)
        } catch {
            endOperation()
            throw error
        }
        self.owner = owner
        armings += 1
    }

    /// Ends the iteration that holds `lease`, if it armed the multishot: cancels it (its
    /// last completion follows) and copies the queued bytes out of the ring. Off the
    /// loop's thread (a task that outlived its loop) there is nothing left: the
    /// shutdown ended the multishot and dropped the queue. Returns whether it did: false
    /// for another iteration (one that met ``ReactorError/busy``).
    @discardableResult
    func stop(for lease: BufferLease) -> Bool {
        guard loop.isCurrent, owner == ObjectIdentifier(lease) else { return false }
        owner = nil
        stop()
        for index in entries.indices {
            guard case .provided(let id) = entries[index].buffer else { continue }
            entries[index] = copy(entries[index].start, count: entries[index].count)
            loop.giveBack(.provided(id))
        }
        ringSlices = 0
        return true
    }

    /// Returns once the multishot in flight, if any, sent its last completion; does not
    /// end early when the task is cancelled, so that a reader that gives up leaves
    /// nothing in flight on the descriptor.
    nonisolated(nonsending) func waitUntilEnded() async {
        guard isArmed else { return }
        precondition(ending == nil, "one task at a time waits for a multishot receive to end")
        await withUnsafeContinuation { ending = $0 }
    }

    /// Copies queued bytes into `buffer`, for a plain read: a multishot that is stopping
    /// ends first. Returns nil if nothing is queued; 0 or a negated errno as the stream's
    /// end.
    // Inlined into every plain read: called, it would cost a frame of its own per read
    // for a wait that is rare.
    @inline(__always)
    nonisolated(nonsending) func copyQueued(into buffer: UnsafeMutableRawBufferPointer) async -> Int? {
        if isStopping { await waitUntilEnded() }
        guard !entries.isEmpty else { return takeEnd().map(Int.init) }
        return copyOut(into: buffer)
    }

    /// Copies as many queued bytes as fit into `buffer`, and returns their count.
    private func copyOut(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var copied = 0
        while copied < buffer.count, var entry = entries.first {
            let count = min(entry.count, buffer.count - copied)
            (buffer.baseAddress! + copied).copyMemory(from: entry.start, byteCount: count)
            copied += count
            entry.start += count
            entry.count -= count
            if entry.count > 0 {
                entries[entries.startIndex] = entry
            } else if let taken = take() {
                loop.giveBack(taken.buffer)
            }
        }
        return copied
    }

    /// Gives everything queued back, once the descriptor is closed: at once on the loop's
    /// thread, with the loop's next jobs from any other.
    func descriptorClosed() {
        if loop.isCurrent {
            discardQueued()
        } else {
            loop.execute { self.discardQueued() }
        }
    }

    func receive(_ completion: Completion) {
        let snapshot = io.snapshot()
        let gone = snapshot.isClosed || snapshot.isShutDown
        let result = completion.result
        if result > 0 {
            guard let id = completion.providedBuffer else {
                preconditionFailure("a multishot receive completed without a provided buffer")
            }
            if gone {
                loop.giveBack(.provided(id))
            } else {
                queue(id, at: ring.bytes(of: completion), count: Int(result), more: completion.more)
            }
        } else {
            // No buffer: the backend settles one that a completion without bytes names.
            switch -result {
            case 0: end = 0
            case ENOBUFS: ranDry = true
            case ECANCELED: break
            case EINVAL where armings == 1 && entries.isEmpty: Self.isRefused.store(true, ordering: .relaxed)
            default: end = result
            }
        }
        if !completion.more { ended(discarding: gone) }
        reader.notify()
    }

    /// Queues the slice of provided buffer `id` at `bytes`, or a copy of it beyond the
    /// bound or once the iteration ended; reaching the bound stops the multishot.
    private func queue(_ id: UInt16, at bytes: UnsafeMutableRawPointer, count: Int, more: Bool) {
        guard owner != nil, ringSlices < Self.bound else {
            entries.append(copy(bytes, count: count))
            loop.giveBack(.provided(id))
            return
        }
        entries.append(Entry(buffer: .provided(id), start: bytes, count: count))
        ringSlices += 1
        mostRingSlices = max(mostRingSlices, ringSlices)
        if ringSlices == Self.bound && more { stop() }
    }

    /// An entry with a copy of `count` bytes at `bytes`.
    private func copy(_ bytes: UnsafeMutableRawPointer, count: Int) -> Entry {
        let copy = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 16)
        // Bound as the pool's buffers are: chunks read their bytes as UInt8.
        copy.bindMemory(to: UInt8.self, capacity: count)
        copy.copyMemory(from: bytes, byteCount: count)
        return Entry(buffer: .copy(copy), start: copy, count: count)
    }

    private func stop() {
        guard let id = armed, !isStopping else { return }
        isStopping = true
        loop.completions?.cancel(id)
    }

    /// The multishot's last completion: its claim and operation end, and a task waiting
    /// for that end goes on.
    private func ended(discarding: Bool) {
        armed = nil
        isStopping = false
        io.unclaim(reading: true)
        if discarding { discardQueued() }
        endOperation()
        ending.take()?.resume()
    }

    private func discardQueued() {
        while let entry = take() { loop.giveBack(entry.buffer) }
    }

    /// Counts the multishot out; the last operation on a closed descriptor closes it.
    private func endOperation() {
        if io.endOperation() { try? descriptor.close() }
    }
}

extension AsyncFD {
    /// Loop thread only: the descriptor's receive queue, made on first use.
    var receiveQueue: ReceiveQueue {
        if let queuedBytes { return queuedBytes }
        let queue = ReceiveQueue(io: io, descriptor: fileDescriptor, loop: eventLoop)
        queuedBytes = queue
        return queue
    }
}
