#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The end of a backend's wake-up descriptor that other threads write to.
///
/// A producer can win the inbox's wake-up flag just before the loop stops, and write only
/// after the loop closed the descriptor, when its number may already name someone else's
/// file. So the write and the close take the same lock, and a write after the close does
/// nothing: the loop it would wake has stopped.
struct WakeUpWriter: ~Copyable, Sendable {
    /// The descriptor's number, which the backend registers with its poller and lists.
    let descriptor: CInt
    private let isClosed = Locked(false)

    init(_ descriptor: CInt) {
        self.descriptor = descriptor
    }

    /// Writes `value` (an eventfd's counter, a pipe's byte), unless closed. A full
    /// descriptor (`EAGAIN`) means the loop is woken already.
    func signal<Value: BitwiseCopyable>(_ value: Value) {
        isClosed.withLock { isClosed in
            guard !isClosed else { return }
            var value = value
            _ = withUnsafeBytes(of: &value) { write(descriptor, $0.baseAddress, $0.count) }
        }
    }

    /// Closes the descriptor; later signals do nothing.
    func close() {
        isClosed.withLock { isClosed in
            guard !isClosed else { return }
            closeDescriptor(descriptor)
            isClosed = true
        }
    }
}
