import CReactor

/// What a task's cancellation reaches while the task waits in the reactor: its park on a
/// ``Waiter``, or its completion operation in one direction of a descriptor.
///
/// The runtime's cancellation record holds one pointer of context, so a target is an
/// object's address with the kind in its two low bits, which are zero in the address
/// of any Swift object (objects are at least 16-byte aligned). The record holds no
/// reference: the waiting task keeps the object alive while the record is installed.
struct CancellationTarget {
    fileprivate let context: UnsafeMutableRawPointer

    private static let kindMask: UInt = 3
    private static let park: UInt = 0
    private static let readOperation: UInt = 1
    private static let writeOperation: UInt = 2

    private init(_ object: AnyObject, kind: UInt) {
        let address = UInt(bitPattern: Unmanaged.passUnretained(object).toOpaque())
        context = UnsafeMutableRawPointer(bitPattern: address | kind)!
    }

    /// The park in progress on `waiter`.
    static func park(on waiter: Waiter) -> CancellationTarget {
        CancellationTarget(waiter, kind: park)
    }

    /// The completion operation `io` has in flight for reading (or writing).
    static func operation(on io: ScheduledIO, reading: Bool) -> CancellationTarget {
        CancellationTarget(io, kind: reading ? readOperation : writeOperation)
    }

    /// Tells the target that its task was cancelled.
    fileprivate static func fire(_ context: UnsafeMutableRawPointer) {
        let bits = UInt(bitPattern: context)
        let object = UnsafeRawPointer(bitPattern: bits & ~kindMask)!
        switch bits & kindMask {
        case park:
            Unmanaged<Waiter>.fromOpaque(object).takeUnretainedValue().cancelPark()
        case let kind:
            let io = Unmanaged<ScheduledIO>.fromOpaque(object).takeUnretainedValue()
            io.cancelOperation(reading: kind == readOperation)
        }
    }
}

/// Runs `operation` with a cancellation record for `target` installed on the current
/// task: cancelling the task meanwhile reaches `target` once, on the cancelling thread,
/// or at once, on this one, if the task is cancelled already.
///
/// This is `withTaskCancellationHandler` without its executor switches. The standard
/// library's form calls its operation as a plain async closure, which starts on the
/// generic executor and switches back when it returns; for a task with an executor
/// preference, each switch reads that preference under a lock in the runtime. On an
/// event loop, those two switches per wait were a fifth of what an echoed message cost,
/// for nothing: the task never leaves its loop. This form installs the same record,
/// through the same runtime entry points, around a `nonisolated(nonsending)` operation.
nonisolated(nonsending) func whileCancellable<T, E: Error>(
    _ target: CancellationTarget, _ operation: nonisolated(nonsending) () async throws(E) -> T
) async throws(E) -> T {
    let record = creactor_task_add_cancellation(target.context)
    defer { creactor_task_remove_cancellation(record) }
    return try await operation()
}

/// The handler of every record ``whileCancellable(_:_:)`` installs, called by the runtime.
@_cdecl("creactor_task_cancelled")
func taskCancelled(_ context: UnsafeMutableRawPointer) {
    CancellationTarget.fire(context)
}
