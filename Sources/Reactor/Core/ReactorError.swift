import SystemPackage

/// Why an operation could not run, when no syscall failed.
public enum ReactorError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The resource was closed, by this or another task, before or while the operation waited.
    case closed
    /// The event loop that owns the resource shut down.
    case loopShutDown
    /// Another task already waits on this direction of the resource. A resource has
    /// one reader and one writer at a time.
    case busy
    /// The stream ended before the bytes an exact read asked for arrived.
    case endOfStream

    /// A sentence saying what happened.
    public var description: String {
        switch self {
        case .closed: "the resource is closed"
        case .loopShutDown: "the event loop has shut down"
        case .busy: "another task is already waiting on this direction of the resource"
        case .endOfStream: "the stream ended before the expected bytes arrived"
        }
    }
}

/// A system call that failed: which operation, the `errno` it left, and the address it
/// concerned, if any.
///
/// ```swift
/// do {
///     let stream = try await TCPStream.connect(to: address)
/// } catch let error as IOError where error.errno == .connectionRefused {
///     print("nobody listens on \(error.address!)")
/// }
/// ```
public struct IOError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What Reactor was doing when the call failed.
    public struct Operation: Hashable, Sendable, CustomStringConvertible {
        /// The operation's name, as errors print it.
        public let name: String
        /// Names an operation; libraries built on Reactor may add their own.
        public init(_ name: String) { self.name = name }
        /// The operation's name.
        public var description: String { name }

        /// Adding a descriptor to the loop's backend (`epoll_ctl(2)`, ...).
        public static let register = Operation("register")
        /// Removing a descriptor from the loop's backend.
        public static let deregister = Operation("deregister")
        /// `read(2)`.
        public static let read = Operation("read")
        /// `write(2)`.
        public static let write = Operation("write")
        /// `close(2)`.
        public static let close = Operation("close")
        /// Creating a descriptor (`pipe2(2)`, `eventfd(2)`, `epoll_create1(2)`, ...).
        public static let create = Operation("create")
        /// `socket(2)`.
        public static let socket = Operation("socket")
        /// `bind(2)`.
        public static let bind = Operation("bind")
        /// `listen(2)`.
        public static let listen = Operation("listen")
        /// `accept4(2)`.
        public static let accept = Operation("accept")
        /// `connect(2)`, and the wait for it to complete.
        public static let connect = Operation("connect")
        /// `send(2)`, `sendto(2)`, `sendmsg(2)` or `sendmmsg(2)`.
        public static let send = Operation("send")
        /// `recv(2)`, `recvfrom(2)`, `recvmsg(2)` or `recvmmsg(2)`.
        public static let receive = Operation("receive")
        /// `shutdown(2)`.
        public static let shutdown = Operation("shutdown")
        /// `setsockopt(2)`.
        public static let setOption = Operation("setsockopt")
        /// `getsockopt(2)`.
        public static let getOption = Operation("getsockopt")
        /// `getsockname(2)` or `getpeername(2)`.
        public static let address = Operation("address")
    }

    /// The operation that failed.
    public let operation: Operation
    /// The error number the system call returned, as swift-system names it.
    public let errno: Errno
    /// The address the operation concerned: where a connect or send went, what a bind
    /// or listen asked for, who a read or write was talking to.
    public let address: SocketAddress?

    /// Creates an error for `operation` that failed with `errno`, concerning `address`.
    public init(_ operation: Operation, _ errno: Errno, address: SocketAddress? = nil) {
        self.operation = operation
        self.errno = errno
        self.address = address
    }

    /// The operation, the address, the error and its number, e.g.
    /// `connect 127.0.0.1:9 failed: Connection refused (errno 111)`.
    public var description: String {
        let subject = address.map { "\(operation) \($0)" } ?? "\(operation)"
        return "\(subject) failed: \(errno) (errno \(errno.rawValue))"
    }
}
