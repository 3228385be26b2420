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
    /// The descriptor, or nil once closed.
    private let descriptor: Locked<CInt?>

    init(_ descriptor: CInt) {
        self.descriptor = Locked(descriptor)
    }

    /// Writes `value` (an eventfd's counter, a pipe's byte), unless closed. A full
    /// descriptor (`EAGAIN`) means the loop is woken already.
    func signal<Value: BitwiseCopyable>(_ value: Value) {
        descriptor.withLock { descriptor in
            guard let descriptor else { return }
            var value = value
            _ = withUnsafeBytes(of: &value) { write(descriptor, $0.baseAddress, $0.count) }
        }
    }

    /// Closes the descriptor; later signals do nothing.
    func close() {
        descriptor.withLock { descriptor in
            if let open = descriptor.take() { closeDescriptor(open) }
        }
    }
}
