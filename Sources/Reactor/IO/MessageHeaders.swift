#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The message headers a descriptor hands a completion backend for its datagram
/// operations (io_uring `SENDMSG` and `RECVMSG`): one to receive with and one to send
/// with, each with its vector and its address, allocated once, on the first such
/// operation, and kept at addresses that never move.
///
/// Loop thread only. The kernel reads a header, and writes the address, its length and
/// the flags back, until the operation's final completion: so a message is leased
/// before it is filled, and given back only after that completion. A second task that
/// asks for a leased message gets ``ReactorError/busy``, as the operation's claim would
/// tell it, but before it could overwrite what the kernel may still read. The headers
/// live as long as their ``AsyncFD``, which an operation keeps alive until its end.
final class MessageHeaders {
    struct Message {
        var header = msghdr()
        var vector = iovec()
        var address = sockaddr_storage()
        var isLeased = false
    }

    /// The receiving message, then the sending one.
    private let messages: UnsafeMutablePointer<Message>

    init() {
        messages = .allocate(capacity: 2)
        messages.initialize(repeating: Message(), count: 2)
    }

    deinit {
        messages.deinitialize(count: 2)
        messages.deallocate()
    }

    /// Runs `body` with the message to send (or receive) with, leased for the call.
    ///
    /// - Throws: ``ReactorError/busy`` if another task holds it; what `body` throws.
    func withMessage<Result>(
        sending: Bool, _ body: (UnsafeMutablePointer<Message>) async throws -> Result
    ) async throws -> Result {
        let message = messages + (sending ? 1 : 0)
        guard !message.pointee.isLeased else { throw ReactorError.busy }
        message.pointee.isLeased = true
        defer { message.pointee.isLeased = false }
        return try await body(message)
    }
}
