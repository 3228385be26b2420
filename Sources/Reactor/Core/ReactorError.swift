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

    /// A sentence saying what happened.
    public var description: String {
        switch self {
        case .closed: "the resource is closed"
        case .loopShutDown: "the event loop has shut down"
        case .busy: "another task is already waiting on this direction of the resource"
        }
    }
}

/// A system call that failed: which operation, and the `errno` it left.
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
    }

    /// The operation that failed.
    public let operation: Operation
    /// The error number the system call returned, as swift-system names it.
    public let errno: Errno

    /// Creates an error for `operation` that failed with `errno`.
    public init(_ operation: Operation, _ errno: Errno) {
        self.operation = operation
        self.errno = errno
    }

    /// The operation, the error and its number, e.g. `read failed: Broken pipe (errno 32)`.
    public var description: String { "\(operation) failed: \(errno) (errno \(errno.rawValue))" }
}
