import CReactor
import DequeModule
import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Host-name resolution through the system resolver.
public enum DNS {
    /// Resolves `host` to the addresses a client should try, in the order to try them.
    ///
    /// ```swift
    /// for address in try await DNS.resolve(host: "example.com", port: 443) { ... }
    /// ```
    ///
    /// An IP address literal (`192.0.2.1`, `2001:db8::1`, `fe80::1%eth0`) is answered at
    /// once, without suspending. A name under `invalid.` fails at once with
    /// ``ResolutionError/Code/noName``, as RFC 6761 §6.4 asks, and is never sent to a name
    /// server. Any other name goes to `getaddrinfo(3)`, which reads `/etc/hosts` and asks
    /// the configured name servers, on a small pool of threads of its own: the caller's
    /// thread, whether an event loop's or one of Swift's cooperative pool, never blocks.
    /// Any executor may call it.
    ///
    /// The addresses are in Happy Eyeballs order (RFC 8305 §4): IPv6 first if there is one,
    /// then the families alternate, each in the order `getaddrinfo` sorted them; no address
    /// appears twice. IPv6 addresses are returned even when the host has no IPv6 route
    /// (`AI_ADDRCONFIG` is not set): connecting to one fails fast, and the next is tried.
    ///
    /// The corresponding C function is `getaddrinfo(3)`.
    ///
    /// - Parameters:
    ///   - host: a host name or an IP address literal, without brackets.
    ///   - port: the port every returned address carries.
    /// - Returns: at least one address.
    /// - Throws: ``ResolutionError`` if the name cannot be resolved; `CancellationError` if
    ///   the task is cancelled while it waits (the lookup then ends unseen on its thread);
    ///   ``IOError`` with operation ``IOError/Operation/create`` if no resolver thread could start.
    public static func resolve(host: String, port: UInt16) async throws -> [SocketAddress] {
        if let literal = try? SocketAddress(ipAddress: host, port: port) { return [literal] }
        // getaddrinfo reads a C string: a NUL would cut the name short and resolve another.
        if host.utf8.contains(0) || isUnderInvalidDomain(host) {
            throw ResolutionError(host: host, code: .noName)
        }
        return try await ResolverPool.shared.run { lookup(host: host, port: port) }.get()
    }

    /// Runs `getaddrinfo(3)` for `host` on the calling thread, which it blocks, and orders
    /// the result for Happy Eyeballs.
    static func lookup(host: String, port: UInt16) -> Result<[SocketAddress], ResolutionError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        // One entry per address, for TCP, instead of one for each socket type.
        hints.ai_protocol = CInt(IPPROTO_TCP)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let code = getaddrinfo(host, String(port), &hints, &list)
        guard code == 0 else {
            let systemError = code == EAI_SYSTEM ? Errno(rawValue: errno) : nil
            return .failure(ResolutionError(host: host, code: .init(rawValue: code), systemError: systemError))
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var entry = list
        while let info = entry?.pointee {
            // With AF_UNSPEC every entry is AF_INET or AF_INET6; anything else is skipped.
            let bytes = UnsafeRawBufferPointer(start: info.ai_addr, count: Int(info.ai_addrlen))
            if let address = try? SocketAddress(bytes: bytes) { addresses.append(address) }
            entry = info.ai_next
        }
        guard !addresses.isEmpty else { return .failure(ResolutionError(host: host, code: .noData)) }
        return .success(happyEyeballsOrder(addresses))
    }

    /// Orders addresses for connection attempts as RFC 8305 §4 describes: the family of
    /// the address `getaddrinfo` ranked first leads, then the families alternate, each
    /// keeping its own order; duplicates after the first are dropped. With one family
    /// only, the order is unchanged.
    static func happyEyeballsOrder(_ addresses: [SocketAddress]) -> [SocketAddress] {
        var seen = Set<SocketAddress>()
        let unique = addresses.filter { seen.insert($0).inserted }
        guard let leading = unique.first?.family else { return [] }
        let first = unique.filter { $0.family == leading }
        let second = unique.filter { $0.family != leading }
        var ordered: [SocketAddress] = []
        ordered.reserveCapacity(unique.count)
        for index in 0..<max(first.count, second.count) {
            if index < first.count { ordered.append(first[index]) }
            if index < second.count { ordered.append(second[index]) }
        }
        return ordered
    }

    /// Whether `host` is `invalid.` or a name under it: RFC 6761 §6.4 reserves that domain
    /// for names that must never resolve, and asks resolvers to say so without a query.
    static func isUnderInvalidDomain(_ host: String) -> Bool {
        var name = Substring(host.lowercased())
        if name.hasSuffix(".") { name = name.dropLast() }
        return name == "invalid" || name.hasSuffix(".invalid")
    }
}

/// A host name that `getaddrinfo(3)` could not resolve: which name, and why.
///
/// ```swift
/// do {
///     let addresses = try await DNS.resolve(host: name, port: 80)
/// } catch let error as ResolutionError where error.isNotFound {
///     print("no such host: \(error.host)")
/// }
/// ```
public struct ResolutionError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A `getaddrinfo(3)` error code, one of the `EAI_*` constants.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The `EAI_*` value.
        public let rawValue: CInt

        /// The code with the `EAI_*` value `rawValue`.
        public init(rawValue: CInt) { self.rawValue = rawValue }

        /// The name is not known: no such host, or the name server says it does not exist.
        /// The corresponding C constant is `EAI_NONAME`.
        public static let noName = Code(rawValue: EAI_NONAME)

        /// The name exists but has no address. The corresponding C constant is `EAI_NODATA`.
        public static let noData = Code(rawValue: CREACTOR_EAI_NODATA)

        /// The name server did not answer in time, or answered that it is busy; trying later
        /// may work. The corresponding C constant is `EAI_AGAIN`.
        public static let temporaryFailure = Code(rawValue: EAI_AGAIN)

        /// The name server failed for good. The corresponding C constant is `EAI_FAIL`.
        public static let permanentFailure = Code(rawValue: EAI_FAIL)

        /// The resolver ran out of memory. The corresponding C constant is `EAI_MEMORY`.
        public static let outOfMemory = Code(rawValue: EAI_MEMORY)

        /// A system call failed; ``ResolutionError/systemError`` says which `errno` it left.
        /// The corresponding C constant is `EAI_SYSTEM`.
        public static let system = Code(rawValue: EAI_SYSTEM)

        /// The C library's message for the code. The corresponding C function is `gai_strerror(3)`.
        public var description: String { String(cString: gai_strerror(rawValue)) }
    }

    /// The name that did not resolve.
    public let host: String
    /// Why it did not resolve.
    public let code: Code
    /// The `errno` a failed system call left, when ``code`` is ``Code/system``; nil otherwise.
    public let systemError: Errno?

    init(host: String, code: Code, systemError: Errno? = nil) {
        self.host = host
        self.code = code
        self.systemError = systemError
    }

    /// Whether the name has no address: it does not exist (``Code/noName``) or exists
    /// without an address (``Code/noData``). Retrying will not help.
    public var isNotFound: Bool { code == .noName || code == .noData }

    /// Whether the failure may pass: the name server did not answer (``Code/temporaryFailure``).
    public var isTemporary: Bool { code == .temporaryFailure }

    /// The host, the C library's reason, and the `EAI_*` value, e.g.
    /// `cannot resolve "x.invalid": Name or service not known (EAI -2)`.
    public var description: String {
        let reason = systemError.map { "\(code): \($0)" } ?? "\(code)"
        return "cannot resolve \"\(host)\": \(reason) (EAI \(code.rawValue))"
    }
}

/// A few threads of its own that run blocking lookups, so that neither an event loop
/// thread nor Swift's cooperative pool ever waits on `getaddrinfo(3)`.
///
/// A thread starts when a job arrives that the idle threads cannot all take, up to
/// `maximumThreads`, and ends after `idleTimeout` without work, so an idle process keeps
/// no resolver thread. Jobs run in the order they arrive.
final class ResolverPool: @unchecked Sendable {
    // `@unchecked Sendable`: `state` is read and written only with `mutex` held, and
    // `condition` is always waited on with it.

    /// The pool behind ``DNS/resolve(host:port:)``.
    static let shared = ResolverPool(maximumThreads: 4, idleTimeout: .seconds(10))

    private struct State {
        var jobs: Deque<any ResolverPoolJob> = []
        /// Threads started and not yet ended, idle or busy.
        var threads = 0
        /// Threads waiting on `condition`, including one signalled but not yet awake: a
        /// job counted against them will be taken without a new thread.
        var idle = 0
    }

    private let maximumThreads: Int
    private let idleTimeout: Duration
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// Signalled once for each job queued while a thread is idle.
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var state = State()

    init(maximumThreads: Int, idleTimeout: Duration) {
        precondition(maximumThreads > 0, "a resolver pool needs at least one thread")
        self.maximumThreads = maximumThreads
        self.idleTimeout = idleTimeout
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        var result = pthread_mutex_init(mutex, nil)
        precondition(result == 0, "pthread_mutex_init failed: \(result)")
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        result = pthread_cond_init(condition, nil)
        precondition(result == 0, "pthread_cond_init failed: \(result)")
    }

    // Every thread holds a reference to the pool, so this runs only once all have ended.
    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// How many threads are running now (for tests and diagnostics).
    var threadCount: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return state.threads
    }

    /// How many jobs wait for a thread now (for tests and diagnostics).
    var queuedJobCount: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return state.jobs.count
    }

    /// Runs `work` on a pool thread and returns its result, suspending the caller
    /// meanwhile.
    ///
    /// - Throws: `CancellationError` as soon as the task is cancelled, whether `work` has
    ///   started or not; a started `work` runs to its end and its result is dropped. An
    ///   ``IOError`` if no thread could start to run it.
    func run<Value: Sendable>(_ work: @escaping @Sendable () -> Value) async throws -> Value {
        let job = ResolverJob(work)
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { continuation in
                if job.park(continuation) { submit(job) }
            }
        } onCancel: {
            job.cancel()
        }
    }

    private func submit(_ job: any ResolverPoolJob) {
        pthread_mutex_lock(mutex)
        state.jobs.append(job)
        let startsThread = state.jobs.count > state.idle && state.threads < maximumThreads
        if startsThread { state.threads += 1 }
        if state.idle > 0 { pthread_cond_signal(condition) }
        pthread_mutex_unlock(mutex)
        guard startsThread else { return }

        let result = startDetachedThread { self.serve() }
        guard result != 0 else { return }
        // A running thread will take the queued jobs in time. With none left, nothing
        // ever would: fail them all now.
        pthread_mutex_lock(mutex)
        state.threads -= 1
        var stranded: [any ResolverPoolJob] = []
        if state.threads == 0 {
            stranded = Array(state.jobs)
            state.jobs.removeAll()
        }
        pthread_mutex_unlock(mutex)
        for job in stranded { job.fail(IOError(.create, Errno(rawValue: result))) }
    }

    /// A pool thread's life: take jobs in order; after `idleTimeout` with none, end.
    private func serve() {
        #if os(Linux)
        creactor_set_thread_name("reactor-dns")
        // A lookup over TCP writes to a socket the name server may have closed: let that
        // fail with EPIPE rather than kill the process. The mask is this thread's only.
        _ = creactor_block_sigpipe()
        #endif
        pthread_mutex_lock(mutex)
        while true {
            if let job = state.jobs.popFirst() {
                pthread_mutex_unlock(mutex)
                job.run()
                pthread_mutex_lock(mutex)
                continue
            }
            state.idle += 1
            var deadline = Self.realtime(after: idleTimeout)
            let result = pthread_cond_timedwait(condition, mutex, &deadline)
            state.idle -= 1
            // A job that raced in with the timeout is still taken: the queue is checked
            // under the same lock hold that ends the wait.
            if result == ETIMEDOUT && state.jobs.isEmpty {
                state.threads -= 1
                pthread_mutex_unlock(mutex)
                return
            }
        }
    }

    /// `CLOCK_REALTIME` now plus `duration`, the clock `pthread_cond_timedwait` measures by
    /// default. A step of the wall clock only lengthens or shortens one idle wait.
    private static func realtime(after duration: Duration) -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let (seconds, attoseconds) = duration.components
        let nanoseconds = now.tv_nsec + Int(attoseconds / 1_000_000_000)
        return timespec(tv_sec: now.tv_sec + Int(seconds) + nanoseconds / 1_000_000_000,
                        tv_nsec: nanoseconds % 1_000_000_000)
    }
}

/// What the pool's queue holds: a job it can run, or fail when no thread can run it.
private protocol ResolverPoolJob: AnyObject, Sendable {
    /// Runs the work on the calling pool thread and resumes the waiting task with its result.
    func run()
    /// Resumes the waiting task with `error` instead of running the work.
    func fail(_ error: any Error)
}

/// One call to ``ResolverPool/run(_:)``: its work and the continuation that waits for it.
///
/// The lock decides who resumes the continuation, so it is resumed exactly once:
/// 1. `starting`: `run` has installed the cancellation handler and is about to park.
/// 2. `waiting`: ``park(_:)`` stored the continuation; the job is queued.
/// 3. `done`: a pool thread took the continuation to resume it with the result, or the
///    cancellation handler took it to resume it with `CancellationError`.
///
/// Cancelling: in `starting` (a handler installed on an already-cancelled task runs before
/// the continuation exists) the job moves to `done`, and ``park(_:)`` then resumes at once
/// without queueing it. In `waiting` the handler resumes the task itself; a queued job is
/// then skipped by the thread that takes it, and a running one finishes and its result is
/// dropped.
private final class ResolverJob<Value: Sendable>: ResolverPoolJob {
    private enum State {
        case starting
        case waiting(UnsafeContinuation<Value, any Error>)
        case done
    }

    private let work: @Sendable () -> Value
    private let state = Locked(State.starting)

    init(_ work: @escaping @Sendable () -> Value) { self.work = work }

    /// Stores `continuation` for whoever finishes the job. Returns false, having resumed
    /// it with `CancellationError`, if the job was cancelled first.
    func park(_ continuation: UnsafeContinuation<Value, any Error>) -> Bool {
        let parked = state.withLock { state in
            guard case .starting = state else { return false }
            state = .waiting(continuation)
            return true
        }
        if !parked { continuation.resume(throwing: CancellationError()) }
        return parked
    }

    func cancel() {
        take()?.resume(throwing: CancellationError())
    }

    func run() {
        let cancelled = state.withLock { state in
            if case .done = state { return true }
            return false
        }
        guard !cancelled else { return }
        let value = work()
        take()?.resume(returning: value)
    }

    func fail(_ error: any Error) {
        take()?.resume(throwing: error)
    }

    /// Moves to `done`, returning the continuation if this call is the one that ends the wait.
    private func take() -> UnsafeContinuation<Value, any Error>? {
        state.withLock { state in
            switch state {
            case .waiting(let continuation):
                state = .done
                return continuation
            case .starting:
                state = .done
                return nil
            case .done:
                return nil
            }
        }
    }
}
