#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import Synchronization
import SystemPackage

/// The operating-system mechanism an event loop waits on.
///
/// Choose one when creating an ``EventLoopGroup``, or set `REACTOR_BACKEND` in the
/// environment to `epoll`, `uring` or `poll`. Every backend gives the same behaviour;
/// they differ in cost. This is the only file that decides which ones exist here.
public enum BackendKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// `epoll(7)`, edge-triggered. The default on Linux.
    case epoll
    /// `io_uring(7)`: reads and writes on a loop's own tasks run as completions, many
    /// submitted with one syscall. Where the kernel refuses io_uring (too old, disabled
    /// by `kernel.io_uring_disabled`, filtered by seccomp), a loop asked for it runs
    /// epoll instead, and says so once in the log.
    case uring
    /// `poll(2)` over a dense array: portable, and O(n) per wait.
    case poll

    /// The backends this build can run, the default first.
    public static var availableHere: [BackendKind] {
        #if os(Linux)
        URingBackend.isSupported ? [.epoll, .uring, .poll] : [.epoll, .poll]
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

    /// The name `REACTOR_BACKEND` takes: `epoll`, `uring` or `poll`.
    public var description: String { rawValue }

    /// The backend of this kind, or epoll in place of an io_uring the kernel refuses.
    func makeBackend() throws(Errno) -> any ReactorBackend {
        switch self {
        case .epoll: return try EpollBackend()
        case .poll: return try PollBackend()
        case .uring:
            do {
                return try URingBackend()
            } catch {
                Self.reportFallback(error)
                return try EpollBackend()
            }
        }
    }

    private static let fallbackReported = Atomic(false)

    /// Logs the first fallback from io_uring to epoll in this process, and only that one.
    static func reportFallback(_ error: Errno) {
        guard !fallbackReported.exchange(true, ordering: .relaxed) else { return }
        Logger(label: "reactor").warning(
            "io_uring is unavailable here; event loops run epoll instead",
            metadata: ["errno": "\(error)"])
    }

    /// Whether a fallback was reported in this process.
    static var hasReportedFallback: Bool { fallbackReported.load(ordering: .relaxed) }
}
