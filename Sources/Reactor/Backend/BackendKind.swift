#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// The operating-system mechanism an event loop waits on.
///
/// Choose one when creating an ``EventLoopGroup``, or set `REACTOR_BACKEND` in the
/// environment to `epoll` or `poll`. Every backend gives the same behaviour; they
/// differ in cost. This is the only file that decides which ones exist here.
public enum BackendKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// `epoll(7)`, edge-triggered. The default on Linux.
    case epoll
    /// `poll(2)` over a dense array: portable, and O(n) per wait.
    case poll

    /// The backends this build can run, the default first.
    public static var availableHere: [BackendKind] {
        #if os(Linux)
        [.epoll, .poll]
        #else
        #error("Reactor has no backend for this platform yet")
        #endif
    }

    /// `REACTOR_BACKEND` if it names an available backend, else the platform's default.
    public static var `default`: BackendKind {
        if let name = getenv("REACTOR_BACKEND"),
            let kind = BackendKind(rawValue: String(cString: name)),
            availableHere.contains(kind)
        {
            return kind
        }
        return availableHere[0]
    }

    /// The name `REACTOR_BACKEND` takes: `epoll` or `poll`.
    public var description: String { rawValue }

    func makeBackend() throws(Errno) -> any ReactorBackend {
        switch self {
        case .epoll: try EpollBackend()
        case .poll: try PollBackend()
        }
    }
}
