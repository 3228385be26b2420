#if os(Linux)
import CReactor
import Glibc
import Synchronization
import SystemPackage

/// Completion backend over `io_uring(7)`: operations run in the kernel and end with a
/// completion; readiness for ``AsyncFD`` comes from multishot `POLL_ADD`; woken through
/// an `eventfd(2)` the ring keeps polled.
///
/// Everything the loop queued in a turn goes to the kernel with its wait, in one
/// `io_uring_enter`. Only the loop thread touches the ring; requests from other threads
/// (arming, removing, cancelling) wait in a locked list that the next wait submits.
final class URingBackend: CompletionBackend, @unchecked Sendable {
    // `@unchecked Sendable`: `ring`, `taken`, `completed`, `handingOver`, `deferred`,
    // `started`, `inlineCompletions` and `submitted` are touched only on the loop thread;
    // `requests` and the wake-up writer are locked; the rest is immutable.
    //
    // `@exclusivity(unchecked)`: loop thread only, and no access to one of these calls
    // out to code that could reach it again while it lasts. The runtime's check of that,
    // on every access, was about a third of the loop's user-space instructions per
    // message with one connection.
    @exclusivity(unchecked) private var ring: URing
    private let wakeUp: WakeUpWriter
    private let requests = Locked(Requests())
    /// Whether `requests.list` may hold something: set with the lock held, after the
    /// append, so that the loop takes the lock only when there is something to take.
    private let hasRequests = Atomic<Bool>(false)
    @exclusivity(unchecked) private var taken: [Request] = []
    @exclusivity(unchecked) private var completed: [Completion] = []
    @exclusivity(unchecked) private var handingOver: [Completion] = []
    /// Readiness drained while a full submission queue was flushed, for the next wait.
    @exclusivity(unchecked) private var deferred: [BackendEvent] = []
    private var started = false
    /// How many operations ``submitNow(returning:)`` found complete (for tests).
    private(set) var inlineCompletions = 0
    /// Entries queued by ``submit(_:as:)`` and ``submitUnawaited(_:)``, by opcode.
    @exclusivity(unchecked) private var submitted = [Int](repeating: 0, count: Int(UInt8.max) + 1)
    /// The loop's thread (`pthread_t`), once it waited: requests from it need no wake-up.
    private let loopThread = Atomic<UInt>(0)
    let providedBuffers: ProvidedBuffers

    private struct Requests {
        var list: [Request] = []
        /// The descriptors with a multishot poll armed or about to be, by token.
        var polled: [Token: CInt] = [:]
        var isClosed = false
    }

    private enum Request {
        case poll(CInt, Token)
        case removePoll(Token)
        case cancel(OperationID)
        case cancelAll
        case recycle(UInt16)
    }

    var kind: BackendKind { .uring }

    /// - Throws: what ``URing/init(entries:completions:)`` throws, or `eventfd`'s `Errno`.
    init(entries: UInt32 = 1024, completions: UInt32 = 16 * 1024) throws(Errno) {
        if let forced = Self.forcedSetupError { throw forced }
        ring = try URing(entries: entries, completions: completions)
        let wakeFD = try valueOrErrno { creactor_eventfd() }
        do {
            providedBuffers = try ProvidedBuffers(
                ring: ring.descriptor, count: Self.providedBufferCount, incremental: Self.incrementalProvidedBuffers)
        } catch {
            closeDescriptor(wakeFD)
            throw error
        }
        wakeUp = WakeUpWriter(wakeFD)
        completed.reserveCapacity(1024)
        handingOver.reserveCapacity(1024)
        taken.reserveCapacity(64)
    }

    // MARK: Readiness

    func register(_ fd: CInt, token: Token) throws(Errno) {}

    func deregister(_ fd: CInt, token: Token) throws(Errno) {
        request { requests in
            guard requests.polled.removeValue(forKey: token) != nil else { return nil }
            return .removePoll(token)
        }
    }

    /// Polls are armed on first use: a descriptor that only ever runs completion
    /// operations costs no poll completions.
    func arm(_ fd: CInt, token: Token, interest: Readiness) {
        request { requests in
            guard requests.polled[token] == nil else { return nil }
            requests.polled[token] = fd
            return .poll(fd, token)
        }
    }

    // MARK: Completions

    func submit(_ operation: CompletionOperation, as id: OperationID) {
        entry(for: operation).pointee.user_data = UserData.operation(id)
    }

    func submitUnawaited(_ operation: CompletionOperation) {
        entry(for: operation).pointee.user_data = UserData.ignored
    }

    /// Loop thread only: how many entries with `opcode` this backend queued (for tests:
    /// which operations went through the ring).
    func submissions(of opcode: UInt8) -> Int {
        submitted[Int(opcode)]
    }

    /// A submission entry filled for `operation`, without its user data.
    private func entry(for operation: CompletionOperation) -> UnsafeMutablePointer<creactor_sqe> {
        let entry = nextEntry()
        switch operation {
        case .receive(let fd, let buffer, let flags):
            entry.prepare(CREACTOR_IORING_OP_RECV, fd, buffer.baseAddress, buffer.count, flags: UInt32(bitPattern: flags))
        case .send(let fd, let bytes, let flags):
            entry.prepare(CREACTOR_IORING_OP_SEND, fd, bytes.baseAddress, bytes.count, flags: UInt32(bitPattern: flags))
        case .receiveSelecting(let fd):
            entry.prepare(CREACTOR_IORING_OP_RECV, fd, nil, ProvidedBuffers.bufferSize)
            entry.selectBuffer()
        case .readSelecting(let fd):
            entry.prepare(CREACTOR_IORING_OP_READ, fd, nil, ProvidedBuffers.bufferSize, offset: .max)
            entry.selectBuffer()
        case .read(let fd, let buffer):
            entry.prepare(CREACTOR_IORING_OP_READ, fd, buffer.baseAddress, buffer.count, offset: .max)
        case .write(let fd, let bytes):
            entry.prepare(CREACTOR_IORING_OP_WRITE, fd, bytes.baseAddress, bytes.count, offset: .max)
        case .acceptMultishot(let fd):
            entry.prepare(CREACTOR_IORING_OP_ACCEPT, fd, nil, 0, flags: UInt32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
            entry.pointee.ioprio = CREACTOR_IORING_ACCEPT_MULTISHOT
        case .connect(let fd, let name, let length):
            // CONNECT takes the address length in the offset field.
            entry.prepare(CREACTOR_IORING_OP_CONNECT, fd, name, 0, offset: UInt64(length))
        case .sendMessage(let fd, let message, let flags):
            entry.prepare(CREACTOR_IORING_OP_SENDMSG, fd, message, 1, flags: UInt32(bitPattern: flags))
        case .receiveMessage(let fd, let message, let flags):
            entry.prepare(CREACTOR_IORING_OP_RECVMSG, fd, message, 1, flags: UInt32(bitPattern: flags))
        case .close(let fd):
            entry.prepare(CREACTOR_IORING_OP_CLOSE, fd, nil, 0)
        case .receiveMultishot(let fd):
            // Length 0: each completion fills at most one whole provided buffer.
            entry.prepare(CREACTOR_IORING_OP_RECV, fd, nil, 0)
            entry.pointee.ioprio = CREACTOR_IORING_RECV_MULTISHOT
            entry.selectBuffer()
        }
        submitted[Int(entry.pointee.opcode)] &+= 1
        return entry
    }

    func submitNow(returning id: OperationID) -> Completion? {
        // Once a call collected someone else's completion or readiness, the next ones
        // leave their operations to the loop's turn: the task that submits suspends, and
        // the loop hands over what was collected. A task whose writes keep completing
        // cannot hold back the other operations' completions, nor the backpressure that
        // acting on them applies (a receive queue that reached its bound cancels its
        // receive only when its completions are handed over).
        guard started, completed.isEmpty, deferred.isEmpty else { return nil }
        submitRequests()
        do throws(Errno) {
            try ring.enter(waitingFor: 0, timeout: nil)
        } catch {
            // Busy or interrupted: the loop's next wait submits it.
            return nil
        }
        drain(into: &deferred)
        guard let index = completed.lastIndex(where: { $0.operation == id }) else { return nil }
        inlineCompletions += 1
        return completed.remove(at: index)
    }

    var hasPendingWork: Bool { ring.unsubmitted > 0 || ring.hasDeferredCompletions }

    func cancel(_ id: OperationID) {
        request { _ in .cancel(id) }
    }

    func cancelAll() {
        request { _ in .cancelAll }
    }

    func recycle(_ buffer: UInt16) {
        if isLoopThread {
            providedBuffers.recycle(buffer)
        } else if !request({ _ in .recycle(buffer) }) {
            // The ring is gone with its loop: the buffer only stops counting as lent.
            providedBuffers.forget(buffer)
        }
    }

    func takeCompletions(_ body: (Completion) -> Void) {
        // Handed over from a list of their own: a receiver that submits may find the
        // submission queue full, whose flush collects completions into `completed`, for
        // the next turn.
        swap(&completed, &handingOver)
        for completion in handingOver { body(completion) }
        handingOver.removeAll(keepingCapacity: true)
    }

    // MARK: Waiting

    func wait(into events: inout [BackendEvent], timeout: Duration?) throws(Errno) {
        if !started { try start() }
        submitRequests()
        if !deferred.isEmpty {
            events.append(contentsOf: deferred)
            deferred.removeAll(keepingCapacity: true)
        }
        // Completions a `submitNow(returning:)` collected count as already there.
        let waits = timeout != .zero && !ring.hasCompletions && events.isEmpty && completed.isEmpty
        // Completions already queued, and nothing to hand over: no syscall at all.
        if waits || ring.unsubmitted > 0 || !ring.hasCompletions {
            do throws(Errno) {
                try ring.enter(waitingFor: waits ? 1 : 0, timeout: timeout)
            } catch .resourceBusy, .resourceTemporarilyUnavailable {
                // The completion queue is full: drained below, submitted next turn.
            }
        }
        drain(into: &events)
        if ring.overflowed {
            // The kernel kept what did not fit; entering flushes it into the queue.
            try? ring.enter(waitingFor: 0, timeout: nil)
            drain(into: &events)
        }
    }

    func wake() {
        wakeUp.signal(UInt64(1))
    }

    func close() {
        requests.withLock { $0.isClosed = true }
        // Entries queued since the last wait (closes, which nobody awaits) still reach the
        // kernel, or their descriptors would stay open.
        if ring.unsubmitted > 0 { try? ring.enter(waitingFor: 0, timeout: nil) }
        providedBuffers.unregister()
        wakeUp.close()
        ring.close()
    }

    var descriptors: [CInt] {
        requests.withLock { $0.isClosed ? [] : [ring.descriptor, wakeUp.descriptor] }
    }

    // MARK: Internals

    /// A request for the loop's next wait, which submits it; a loop that waits already
    /// is woken for it, unless the request comes from the loop's own thread. Returns
    /// false if the backend is closed.
    @discardableResult
    private func request(_ make: (inout Requests) -> Request?) -> Bool {
        let fromLoop = isLoopThread
        return requests.withLock { requests in
            guard !requests.isClosed else { return false }
            guard let request = make(&requests) else { return true }
            requests.list.append(request)
            hasRequests.store(true, ordering: .releasing)
            if !fromLoop { wakeUp.signal(UInt64(1)) }
            return true
        }
    }

    /// Whether the caller runs on the loop's thread (false before the loop's first wait).
    private var isLoopThread: Bool {
        loopThread.load(ordering: .relaxed) == UInt(pthread_self())
    }

    private func start() throws(Errno) {
        try ring.enableIfNeeded()
        started = true
        loopThread.store(UInt(pthread_self()), ordering: .relaxed)
        armWake()
    }

    /// The wake-up eventfd is never read: every write wakes the poll, which stays armed.
    private func armWake() {
        let entry = nextEntry()
        entry.prepare(CREACTOR_IORING_OP_POLL_ADD, wakeUp.descriptor, nil, Int(CREACTOR_IORING_POLL_ADD_MULTI),
                      flags: UInt32(POLLIN))
        entry.pointee.user_data = UserData.wakeUp
    }

    private func submitRequests() {
        // A request appended after this load woke the loop, or comes from the loop's own
        // thread, which calls this again before it waits.
        guard hasRequests.load(ordering: .acquiring) else { return }
        requests.withLock { requests in
            swap(&requests.list, &taken)
            hasRequests.store(false, ordering: .relaxed)
        }
        for request in taken {
            if case .recycle(let buffer) = request {
                providedBuffers.recycle(buffer)
                continue
            }
            let entry = nextEntry()
            switch request {
            case .poll(let fd, let token):
                entry.prepare(CREACTOR_IORING_OP_POLL_ADD, fd, nil, Int(CREACTOR_IORING_POLL_ADD_MULTI),
                              flags: UInt32(POLLIN | POLLOUT) | UInt32(CREACTOR_POLLRDHUP))
                entry.pointee.user_data = UserData.poll(token)
            case .removePoll(let token):
                // A cancel, not POLL_REMOVE: that one gives up with EALREADY when a
                // wake-up of the poll is pending, and the poll (and its file) stay.
                entry.prepare(CREACTOR_IORING_OP_ASYNC_CANCEL, -1, nil, 0)
                entry.pointee.addr = UserData.poll(token)
                entry.pointee.user_data = UserData.ignored
            case .cancel(let id):
                entry.prepare(CREACTOR_IORING_OP_ASYNC_CANCEL, -1, nil, 0)
                entry.pointee.addr = UserData.operation(id)
                entry.pointee.user_data = UserData.ignored
            case .recycle:
                preconditionFailure("recycled above, without a submission")
            case .cancelAll:
                entry.prepare(CREACTOR_IORING_OP_ASYNC_CANCEL, -1, nil, 0, flags: CREACTOR_IORING_ASYNC_CANCEL_ANY | CREACTOR_IORING_ASYNC_CANCEL_ALL)
                entry.pointee.user_data = UserData.ignored
            }
        }
        taken.removeAll(keepingCapacity: true)
    }

    /// A free submission entry; a full queue is handed to the kernel first.
    private func nextEntry() -> UnsafeMutablePointer<creactor_sqe> {
        while true {
            if let entry = ring.nextEntry() { return entry }
            do throws(Errno) {
                try ring.enter(waitingFor: 0, timeout: nil)
            } catch {
                // The kernel refuses more until completions are taken: take them now,
                // and hand their readiness to the next wait.
                drain(into: &deferred)
            }
        }
    }

    private func drain(into events: inout [BackendEvent]) {
        var wakeEnded = false
        ring.drainCompletions { completion in
            let more = completion.flags & CREACTOR_IORING_CQE_F_MORE != 0
            switch UserData.kind(completion.user_data) {
            case .operation:
                var done = Completion(
                    operation: UserData.operationID(completion.user_data), result: completion.res, flags: completion.flags)
                // In queue order: that is the order the kernel filled each buffer in.
                providedBuffers.take(from: &done)
                completed.append(done)
            case .poll:
                let token = UserData.token(completion.user_data)
                if completion.res >= 0 {
                    events.append(BackendEvent(token: token, readiness: Readiness(events: UInt32(completion.res))))
                    if !more { rearm(token) }
                } else if completion.res != -ECANCELED {
                    events.append(BackendEvent(token: token, readiness: .error))
                }
            case .wakeUp:
                if !more { wakeEnded = true }
            case .ignored:
                break
            }
        }
        if wakeEnded { armWake() }
    }

    /// A multishot poll the kernel ended (its completion lacked `F_MORE`) is armed again,
    /// unless it was removed meanwhile.
    private func rearm(_ token: Token) {
        request { requests in requests.polled[token].map { .poll($0, token) } }
    }

    /// Whether this kernel sets up a ring with everything the backend uses for this
    /// process (Linux 5.19 or later: provided-buffer rings, multishot accept); asked once.
    static let isSupported: Bool = {
        do {
            let ring = try URing(entries: 8, completions: 0)
            _ = try ProvidedBuffers(ring: ring.descriptor, count: 1, incremental: false)
            return true
        } catch {
            return false
        }
    }()

    /// How many provided buffers a ring registers; tests make it small.
    @TaskLocal static var providedBufferCount = 128

    /// Whether a ring asks for incremental consumption of its provided buffers, which
    /// kernels before 6.12 refuse; tests turn it off to run the whole-buffer mode here.
    @TaskLocal static var incrementalProvidedBuffers = true

    /// Set by tests, for the task that creates a loop, to make the setup fail as on a
    /// kernel that refuses io_uring.
    @TaskLocal static var forcedSetupError: Errno?

}

/// A completion's user data: the top two bits say what it belongs to, the rest is
/// a token or an operation ID (slot index below 2^30, and generation).
private enum UserData {
    enum Kind { case poll, operation, wakeUp, ignored }

    private static let kindShift: UInt64 = 62
    private static let payload: UInt64 = (1 << 62) - 1
    private static let operationKind: UInt64 = 1 << 62
    static let wakeUp: UInt64 = 2 << 62
    static let ignored: UInt64 = 3 << 62

    static func poll(_ token: Token) -> UInt64 {
        precondition(token.index < 1 << 30, "more registrations than io_uring user data can name")
        return UInt64(token.index) << 32 | UInt64(token.generation)
    }

    static func operation(_ id: OperationID) -> UInt64 {
        precondition(id.index < 1 << 30, "more operations than io_uring user data can name")
        return operationKind | id.rawValue
    }

    static func kind(_ userData: UInt64) -> Kind {
        switch userData >> kindShift {
        case 0: .poll
        case 1: .operation
        case 2: .wakeUp
        default: .ignored
        }
    }

    static func token(_ userData: UInt64) -> Token {
        Token(index: Int(userData >> 32 & (payload >> 32)), generation: UInt32(truncatingIfNeeded: userData))
    }

    static func operationID(_ userData: UInt64) -> OperationID {
        OperationID(rawValue: userData & payload)
    }
}

extension UnsafeMutablePointer where Pointee == creactor_sqe {
    /// Lets the kernel pick the buffer from the provided ring when bytes arrive.
    fileprivate func selectBuffer() {
        pointee.flags |= CREACTOR_IOSQE_BUFFER_SELECT
        pointee.buf_group = ProvidedBuffers.group
    }

    /// Fills the fields every operation uses; the entry was zeroed.
    fileprivate func prepare(
        _ opcode: UInt8, _ fd: CInt, _ address: UnsafeRawPointer?, _ length: Int,
        flags: UInt32 = 0, offset: UInt64 = 0
    ) {
        pointee.opcode = opcode
        pointee.fd = fd
        pointee.addr = UInt64(UInt(bitPattern: address))
        pointee.len = UInt32(clamping: min(length, Int(Int32.max)))
        pointee.op_flags = flags
        pointee.off = offset
    }
}
#endif
