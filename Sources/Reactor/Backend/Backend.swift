import SystemPackage

/// What one readiness event says about a registered descriptor.
///
/// `readClosed` and `writeClosed` are the half-closes (`EPOLLRDHUP`, and `EPOLLHUP`
/// for both directions); `error` is `EPOLLERR`. Those three are sticky: once seen,
/// they stay until the registration goes away, and they wake both directions.
struct Readiness: OptionSet, Hashable, Sendable {
    let rawValue: UInt32

    static let readable = Readiness(rawValue: 1 << 0)
    static let writable = Readiness(rawValue: 1 << 1)
    static let readClosed = Readiness(rawValue: 1 << 2)
    static let writeClosed = Readiness(rawValue: 1 << 3)
    static let error = Readiness(rawValue: 1 << 4)

    /// The bits that never clear on `EAGAIN`.
    static let sticky: Readiness = [.readClosed, .writeClosed, .error]
}

/// One event out of a backend's wait: which registration, and what it saw.
struct BackendEvent {
    var token: Token
    var readiness: Readiness
}

/// The contract every OS mechanism meets (epoll, io_uring, poll, and later kqueue).
///
/// A backend knows descriptors and tokens, never tasks. `register`, `deregister`
/// and `arm` may be called from any thread; `wait` only from the loop thread, and
/// `wake` from anywhere to end a `wait` early.
protocol ReactorBackend: AnyObject, Sendable {
    /// Starts delivering events for `fd`, tagged with `token`, for both directions.
    func register(_ fd: CInt, token: Token) throws(Errno)

    /// Stops delivering events for `fd`. Called before the descriptor is closed.
    func deregister(_ fd: CInt, token: Token) throws(Errno)

    /// Says that a task now waits for `interest` on `fd`. Edge-triggered backends
    /// ignore it; level-triggered ones poll only the directions somebody waits for.
    func arm(_ fd: CInt, token: Token, interest: Readiness)

    /// Waits up to `timeout` (nil: forever, zero: do not block) and appends what
    /// happened to `events`. A wake-up counts as nothing happening.
    func wait(into events: inout [BackendEvent], timeout: Duration?) throws(Errno)

    /// Ends the current or the next `wait` from any thread. Safe to call often.
    func wake()

    /// Releases the backend's own descriptors. Called once, by the loop thread, last.
    func close()

    /// The descriptors the backend owns (its poller and wake-up), until ``close()``.
    var descriptors: [CInt] { get }

    /// Which mechanism this is.
    var kind: BackendKind { get }
}

extension Duration {
    /// The duration in whole milliseconds, rounded up, as poll-style calls take it.
    /// `nil` (forever) becomes -1.
    static func milliseconds(roundingUp duration: Duration?) -> CInt {
        guard let duration else { return -1 }
        let nanoseconds = nanoseconds(roundingUp: duration)
        return CInt(clamping: nanoseconds / 1_000_000 + (nanoseconds % 1_000_000 > 0 ? 1 : 0))
    }

    /// The duration in whole nanoseconds, rounded up; 0 if it is not positive.
    static func nanoseconds(roundingUp duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return 0 }
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        return whole &+ (attoseconds + 999_999_999) / 1_000_000_000
    }
}
