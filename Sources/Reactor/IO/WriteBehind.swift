#if canImport(Glibc)
import CReactor
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// A stream write that the loop finishes after its writer went on (io_uring).
///
/// On a loop whose next wait submits anyway (other jobs are queued, or submissions
/// wait), a write that waited for its completion would cost the task a suspension, and
/// a resumption in the loop's next turn. A short write
/// is instead copied to a pool buffer and submitted with the loop's next wait, the way
/// the kernel copies a `send(2)` into the socket's buffer, and the writer returns.
///
/// - Order: while one is pending, every other write on the descriptor, from any thread,
///   waits for its end first; so does a `shutdown(2)` of the writing side
///   (``ScheduledIO/deferShutdown(_:)``).
/// - Errors: the kernel's error for the bytes is kept, and thrown by every later write.
/// - Lifetime: the buffer, and the descriptor, live until the final completion (DESIGN
///   §3.9). A short completion submits the rest.
/// - Close: the bytes still go out, as a socket's buffer drains after `close(2)`: the
///   pending write holds the descriptor open. If the kernel has not taken them
///   ``linger`` after the close (a peer that stopped reading), the write is cancelled.
///
/// Loop thread only, but for ``expire(after:)``; the descriptor's ``ScheduledIO`` holds
/// what writers on other threads see.
final class WriteBehind: CompletionSink, @unchecked Sendable {
    // `@unchecked Sendable`: every field is touched on the loop's thread only;
    // `expire(after:)` hands its work to the loop.

    /// How long a write-behind may still take once its descriptor is closed: 30 s.
    @TaskLocal static var linger: Duration = .seconds(30)

    private let io: ScheduledIO
    private let loop: EventLoop
    // The loop's reactor and pool, and the descriptor's writer, held directly: reached
    // through `loop` and `io`, each use of them cost a retain and a release.
    private let reactor: Reactor
    private let pool: BufferPool
    private let writer: Waiter
    private let kind: StreamKind
    /// The pool buffer with the bytes, while a write is pending.
    private var buffer: UnsafeMutableRawPointer?
    private var count = 0
    private var written = 0
    private var operation: OperationID?

    init(io: ScheduledIO, loop: EventLoop, kind: StreamKind) {
        self.io = io
        self.loop = loop
        reactor = loop.reactor
        pool = loop.buffers
        writer = io.writer
        self.kind = kind
    }

    /// Whether the loop can take `count` bytes behind its writer: they fit a pool buffer,
    /// and the pool has not lent more than it keeps, so taking one allocates nothing in
    /// steady state.
    static func takes(_ count: Int, on loop: EventLoop) -> Bool {
        count <= BufferPool.bufferSize && loop.buffers.lentCount < BufferPool.freeLimit
    }

    /// Copies `bytes` and submits their write. Returns false, having started nothing, if
    /// the descriptor was closed or its loop shut down. Loop thread only, with no
    /// write-behind pending.
    func start(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard io.beginWriteBehind() else { return false }
        // Counted as an operation in flight: a close leaves the release to its end.
        _ = io.beginOperation()
        // At most `freeLimit` are pending at once (`takes`): the pool allocates them in one go.
        let buffer = pool.borrow(fillingUp: true)
        buffer.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        self.buffer = buffer
        count = bytes.count
        written = 0
        submitRest()
        return true
    }

    private func submitRest() {
        let rest = UnsafeRawBufferPointer(start: buffer! + written, count: count - written)
        operation = reactor.start(kind.writeOperation(io.descriptor, rest), sink: self)
    }

    func receive(_ completion: Completion) {
        let result = completion.result
        if result >= 0 || result == -EINTR {
            written += max(Int(result), 0)
            if written < count { return submitRest() }
            return finish(failure: nil)
        }
        #if os(Linux)
        // A write to a pipe without a reader raised SIGPIPE on this loop thread, which
        // blocks it; take it so that it is never delivered.
        if result == -EPIPE { creactor_consume_sigpipe() }
        #endif
        finish(failure: Errno(rawValue: -result))
    }

    private func finish(failure: Errno?) {
        pool.giveBack(buffer!)
        buffer = nil
        operation = nil
        if let how = io.endWriteBehind(failure: failure) {
            // Its error is the peer's, which the failed write or the next read reports.
            _ = shutdown(io.descriptor, how)
        }
        writer.notify()
        if io.endOperation() { try? loop.release(io) }
    }

    /// The descriptor was closed while a write was pending: cancels it if it is still
    /// pending after `linger`. Any thread.
    func expire(after linger: Duration) {
        let deadline = LoopClock.Instant.now.advanced(by: linger)
        guard loop.isCurrent else {
            return loop.execute { [self] in
                // After the loop stopped, this runs elsewhere; its shutdown ended the write.
                if loop.isCurrent { expire(at: deadline) }
            }
        }
        expire(at: deadline)
    }

    private func expire(at deadline: LoopClock.Instant) {
        _ = loop.schedule(at: deadline) { [self] in
            if let operation { loop.completions?.cancel(operation) }
        }
    }
}
