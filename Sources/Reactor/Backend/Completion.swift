import CReactor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// An operation a completion backend runs in the kernel: the descriptor, and the memory
/// the kernel reads or writes until the operation's final completion.
enum CompletionOperation {
    /// `recv(2)` into `buffer`.
    case receive(CInt, UnsafeMutableRawBufferPointer, flags: CInt)
    /// `recv(2)` into a provided buffer the kernel picks once bytes arrive.
    case receiveSelecting(CInt)
    /// `read(2)` into a provided buffer the kernel picks once bytes arrive.
    case readSelecting(CInt)
    /// `send(2)` from `bytes`.
    case send(CInt, UnsafeRawBufferPointer, flags: CInt)
    /// `read(2)` at the current position into `buffer`.
    case read(CInt, UnsafeMutableRawBufferPointer)
    /// `write(2)` at the current position from `bytes`.
    case write(CInt, UnsafeRawBufferPointer)
    /// `accept4(2)` again and again, one completion per connection (multishot), the new
    /// descriptors non-blocking and close-on-exec; no peer address.
    case acceptMultishot(CInt)
    /// `connect(2)` to the address `name` points to, `length` bytes long.
    case connect(CInt, UnsafePointer<sockaddr>, socklen_t)
    /// `sendmsg(2)` of `message`: its address, vector and bytes.
    case sendMessage(CInt, UnsafePointer<msghdr>, flags: CInt)
    /// `recvmsg(2)` into `message`, whose address length and flags the kernel writes back.
    case receiveMessage(CInt, UnsafeMutablePointer<msghdr>, flags: CInt)
    /// `close(2)`.
    case close(CInt)
    /// `recv(2)` again and again into provided buffers the kernel picks, one completion
    /// per buffer filled (multishot), until end-of-stream, an error or a cancel.
    case receiveMultishot(CInt)
}

/// One completion of an operation: which one, what the syscall would have returned
/// (a count or a descriptor, or a negated errno), and whether more follow (a multishot
/// operation that goes on). The completion without `more` is the operation's last.
struct Completion {
    var operation: OperationID
    var result: Int32
    /// The completion's `IORING_CQE_F_*` flags.
    var flags: UInt32 = 0
    /// Where the bytes start in ``providedBuffer``: past what earlier completions took of
    /// it, when the ring consumes its buffers incrementally; 0 otherwise.
    var bufferOffset: UInt32 = 0

    var more: Bool { flags & CREACTOR_IORING_CQE_F_MORE != 0 }

    /// The provided buffer the kernel put the bytes in, if it picked one. A completion
    /// handed to its operation names one only if it brought bytes (see
    /// `ProvidedBuffers.take(from:)`).
    var providedBuffer: UInt16? {
        guard flags & CREACTOR_IORING_CQE_F_BUFFER != 0 else { return nil }
        return UInt16(truncatingIfNeeded: flags >> CREACTOR_IORING_CQE_BUFFER_SHIFT)
    }

    /// Whether the kernel keeps ``providedBuffer`` in the ring for the bytes that come
    /// next (`IORING_CQE_F_BUF_MORE`, incremental consumption only).
    var bufferHasMore: Bool { flags & CREACTOR_IORING_CQE_F_BUF_MORE != 0 }
}

/// Names an operation in flight: a slot of the loop's operation table and the
/// generation of that slot, so that a cancel for an operation already finished
/// cannot reach the one that reuses its slot.
struct OperationID: Hashable, Sendable {
    let rawValue: UInt64

    init(rawValue: UInt64) { self.rawValue = rawValue }

    init(index: Int, generation: UInt32) {
        rawValue = UInt64(UInt32(index)) << 32 | UInt64(generation)
    }

    var index: Int { Int(UInt32(truncatingIfNeeded: rawValue >> 32)) }
    var generation: UInt32 { UInt32(truncatingIfNeeded: rawValue) }
}

/// A backend that also runs operations to completion (io_uring), beside readiness.
///
/// ``submit(_:as:)`` is for the loop thread only, from a task that then waits for the
/// completion; ``cancel(_:)`` works from any thread. Every submitted operation ends
/// with exactly one completion, cancelled or not, and the kernel is done with its
/// memory once that completion is out.
protocol CompletionBackend: ReactorBackend {
    /// Queues `operation`; it is handed to the kernel at the loop's next wait.
    func submit(_ operation: CompletionOperation, as id: OperationID)

    /// Loop thread: hands what is queued to the kernel now, without waiting, and returns
    /// the completion of `id` if the kernel finished it inside that call (single-shot
    /// operations only). Every other completion collected waits for the next
    /// ``ReactorBackend/wait(into:timeout:)``, in order; until then, this returns nil at
    /// once and leaves `id` to that wait.
    func submitNow(returning id: OperationID) -> Completion?

    /// Loop thread: whether the loop's next wait has work for the kernel whatever else
    /// happens, and so makes a system call that returns at once: operations are queued
    /// for it to submit, or completions of events that already arrived wait for it
    /// (see ``EventLoop/nextWaitSleeps``).
    var hasPendingWork: Bool { get }

    /// Loop thread only: queues `operation` with nobody to take its completion, which is
    /// dropped. For a close, whose result nothing could act on.
    func submitUnawaited(_ operation: CompletionOperation)

    /// Asks the kernel to cancel `id`; its completion follows, as `ECANCELED` if the
    /// cancel came in time. A finished or unknown `id` is ignored.
    func cancel(_ id: OperationID)

    /// Asks the kernel to cancel every operation in flight (for shutdown).
    func cancelAll()

    /// The buffers reads may select from.
    var providedBuffers: ProvidedBuffers { get }

    /// Hands back a slice of a provided buffer, which goes back to the kernel once nothing
    /// uses it: at once on the loop thread, with the next wait from any other.
    func recycle(_ buffer: UInt16)

    /// Loop thread: hands over the completions the last ``ReactorBackend/wait(into:timeout:)``
    /// collected, in order, and forgets them.
    func takeCompletions(_ body: (Completion) -> Void)
}
