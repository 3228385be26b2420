import SystemPackage

/// Any non-blocking file descriptor, registered with an event loop so that tasks can
/// await its readiness: the public API for custom I/O resources.
///
/// ```swift
/// let source = try AsyncFD(descriptor)
/// let count = try await source.whenReadable { fd in
///     try fd.read(into: buffer)          // throws Errno.wouldBlock when drained
/// }
/// ```
///
/// ``whenReadable(_:)`` and ``whenWritable(_:)`` run a non-blocking operation, and on
/// `EAGAIN` clear the readiness and wait for the next event, then try again. The
/// readiness is only a hint: a spurious wake-up costs one `EAGAIN`, never a lost event.
///
/// One task may wait for each direction at a time: a reader and a writer can share an
/// `AsyncFD`, two readers cannot (the second gets ``ReactorError/busy``).
///
/// The descriptor belongs to the `AsyncFD` from `init` on: ``close()`` deregisters it,
/// resumes any waiting task with ``ReactorError/closed``, and closes it once no
/// operation is inside a syscall on it. Dropping the last reference does the same.
public final class AsyncFD: Sendable {
    /// The registered descriptor. Valid until ``close()``.
    public let fileDescriptor: FileDescriptor
    /// The loop whose reactor watches the descriptor; its tasks are resumed without a hop.
    public let eventLoop: EventLoop
    let io: ScheduledIO
    /// Loop thread only, on io_uring: what takes the completions of the descriptor's
    /// multishot operation, once one started: a stream socket's receive queue, or the
    /// connections a listener accepts. Typed, so that reaching one costs no cast.
    nonisolated(unsafe) var queuedBytes: ReceiveQueue?
    nonisolated(unsafe) var queuedConnections: AcceptedConnections?
    /// Loop thread only: the headers of the datagram operations that ran as completions
    /// on this descriptor, once one did (see ``MessageHeaders``).
    nonisolated(unsafe) var messages: MessageHeaders?
    /// Loop thread only: the stream writes the loop finishes after their writer went on,
    /// on io_uring, once one did. Read elsewhere only after ``ScheduledIO/isWritingBehind``
    /// was seen set, which the loop sets after it stored this.
    nonisolated(unsafe) var writeBehind: WriteBehind?

    /// Registers `fileDescriptor`, which must be non-blocking, and takes ownership of it.
    ///
    /// The descriptor is assumed writable until the first event: a first write then
    /// needs no turn of the loop, and costs at most one `EAGAIN` if it was wrong.
    ///
    /// - Parameters:
    ///   - fileDescriptor: a non-blocking descriptor the kernel can poll (a socket, pipe,
    ///     eventfd, tty, ...). Regular files are always ready and cannot be registered.
    ///   - loop: the loop to register on; by default the calling thread's loop, or one of
    ///     the default group's when the caller runs on no loop.
    /// - Throws: ``IOError`` with operation `.register` (for example `EPERM` for a
    ///   regular file); ``ReactorError/loopShutDown``. The descriptor stays open on failure.
    public convenience init(_ fileDescriptor: FileDescriptor, on loop: EventLoop? = nil) throws {
        try self.init(fileDescriptor, on: loop, assuming: .writable)
    }

    /// Registers `fileDescriptor`, assuming `readiness` until the first event says otherwise.
    /// A socket whose connect is in progress must assume nothing: it is not writable yet.
    init(_ fileDescriptor: FileDescriptor, on loop: EventLoop?, assuming readiness: Interest) throws {
        let loop = try loop ?? EventLoop.currentOrDefault()
        self.fileDescriptor = fileDescriptor
        eventLoop = loop
        io = try loop.reactor.register(fileDescriptor.rawValue, assuming: readiness.readinessSet)
    }

    deinit {
        try? close()
    }

    /// Waits until the descriptor is readable, at end-of-file, or in error.
    ///
    /// Returns at once if the reactor already saw it so. If the read that follows
    /// fails with `EAGAIN`, pass the event to ``clearReadiness(_:)`` before waiting again.
    ///
    /// - Throws: `CancellationError`; ``ReactorError/closed``; ``ReactorError/loopShutDown``;
    ///   ``ReactorError/busy`` if another task waits to read.
    nonisolated(nonsending) public func readable() async throws -> ReadinessEvent {
        try await ready(.readable)
    }

    /// Waits until the descriptor is writable, its reader is gone, or it is in error.
    /// See ``readable()``.
    nonisolated(nonsending) public func writable() async throws -> ReadinessEvent {
        try await ready(.writable)
    }

    /// Forgets the readiness `event` reported, unless a newer event arrived since.
    public func clearReadiness(_ event: ReadinessEvent) {
        io.clear(event.interest.readiness, ifUnchangedSince: event.snapshot)
    }

    /// Runs `operation` when the descriptor is readable, waiting and retrying for as long
    /// as it throws `Errno.wouldBlock` (`EAGAIN`).
    ///
    /// - Parameter operation: a non-blocking read; runs on the calling task's thread.
    /// - Returns: what `operation` returns.
    /// - Throws: ``IOError`` with operation `.read` for any other `Errno` it throws;
    ///   `CancellationError`, ``ReactorError/closed``, ``ReactorError/loopShutDown``,
    ///   ``ReactorError/busy`` as ``readable()``.
    nonisolated(nonsending) public func whenReadable<Result>(
        _ operation: (FileDescriptor) throws(Errno) -> Result
    ) async throws -> Result {
        try await perform(.readable, as: .read) { (fd) throws(Errno) in try operation(FileDescriptor(rawValue: fd)) }
    }

    /// Runs `operation` when the descriptor is writable, waiting and retrying for as long
    /// as it throws `Errno.wouldBlock`. See ``whenReadable(_:)``; errors name `.write`.
    nonisolated(nonsending) public func whenWritable<Result>(
        _ operation: (FileDescriptor) throws(Errno) -> Result
    ) async throws -> Result {
        try await perform(.writable, as: .write) { (fd) throws(Errno) in try operation(FileDescriptor(rawValue: fd)) }
    }

    /// Deregisters and closes the descriptor; resumes waiting tasks with
    /// ``ReactorError/closed``. Closing twice does nothing.
    ///
    /// The descriptor is deregistered first, then closed at once, or by the last
    /// operation still inside a syscall on it, so that no syscall reaches a reused number.
    /// On io_uring, operations in flight are cancelled, and the last to end closes it;
    /// bytes a multishot receive queued are dropped and their buffers given back.
    ///
    /// Called on the thread of an io_uring loop, the close itself is queued as an
    /// `IORING_OP_CLOSE` that goes to the kernel with the loop's next wait, which saves a
    /// syscall per descriptor: the descriptor (and a socket's port) is released by the
    /// end of the loop's current turn rather than when this returns, and what `close(2)`
    /// would have said is not reported. Linux frees the descriptor whatever `close(2)`
    /// returns, so no error the caller could act on is lost.
    ///
    /// - Throws: ``IOError`` if deregistering or `close(2)` fails; the descriptor is
    ///   released either way.
    public func close() throws {
        io.close()
        eventLoop.reactor.cancelOperations(on: io)
        if io.isWritingBehind, let writeBehind { writeBehind.expire(after: WriteBehind.linger) }
        queuedBytes?.descriptorClosed()
        queuedConnections?.descriptorClosed()
        var failure: IOError?
        do {
            try eventLoop.reactor.deregister(io)
        } catch {
            failure = error
        }
        if io.deregistered() {
            do throws(Errno) {
                try eventLoop.release(io)
            } catch {
                failure = failure ?? IOError(.close, error)
            }
        }
        if let failure { throw failure }
    }

    // MARK: The readiness loop

    /// try → on EAGAIN clear and wait → retry: how a readiness backend runs an operation.
    ///
    /// - Parameter drained: says whether a successful result proves the direction is
    ///   exhausted (a short read or write on a stream). The readiness is then cleared at
    ///   once, which saves the `EAGAIN` round trip the next operation would make; an
    ///   event that raced in is kept, as after `EAGAIN`.
    // Never inlined: an async function's frame keeps every local of what it inlines, and a
    // task keeps the task-allocator slabs its deepest call needed; inlined into the
    // writes, this loop took a parked connection from two slabs to three.
    @inline(never)
    nonisolated(nonsending) func perform<Result>(
        _ interest: Interest,
        as name: IOError.Operation,
        address: SocketAddress? = nil,
        drained: (Result) -> Bool = { _ in false },
        _ attempt: (CInt) throws(Errno) -> Result
    ) async throws -> Result {
        while true {
            let snapshot = io.beginOperation()
            if let error = Self.unusable(snapshot) {
                endOperation()
                throw error
            }
            // A pending write-behind (io_uring) holds writes back as a full stream does, and
            // its end wakes them; one that failed fails them. Not a wait of its own: each
            // await here would deepen every parked connection's frames.
            let behind = interest == .writable && io.hasWriteBehind
            let heldBack = behind && io.isWritingBehind
            if behind, !heldBack, let failure = io.writeBehindFailure {
                endOperation()
                throw IOError(name, failure, address: address)
            }
            if !heldBack, !snapshot.readiness.isDisjoint(with: interest.wakeMask) {
                do throws(Errno) {
                    let result = try attempt(io.descriptor)
                    if drained(result) { io.clear(interest.readiness, ifUnchangedSince: snapshot) }
                    endOperation()
                    return result
                } catch .wouldBlock {
                    io.clear(interest.readiness, ifUnchangedSince: snapshot)
                    endOperation()
                } catch {
                    endOperation()
                    throw IOError(name, error, address: address)
                }
            } else {
                endOperation()
            }
            try await park(interest)
        }
    }

    /// One try of `attempt` now, whatever the readiness says and without waiting: nil if
    /// it would block. For a completion backend's loop, where a syscall made at once can
    /// cost less than a submission and its completion.
    ///
    /// - Throws: ``IOError`` naming `name` and `address`; ``ReactorError/closed`` or
    ///   ``ReactorError/loopShutDown`` if the descriptor can no longer be used.
    func attemptNow<Result>(
        as name: IOError.Operation, address: SocketAddress?, _ attempt: (CInt) throws(Errno) -> Result
    ) throws -> Result? {
        let snapshot = io.beginOperation()
        defer { endOperation() }
        if let error = Self.unusable(snapshot) { throw error }
        do throws(Errno) {
            return try attempt(io.descriptor)
        } catch .wouldBlock {
            return nil
        } catch {
            throw IOError(name, error, address: address)
        }
    }

    /// Waits until no write-behind is pending, and throws the error of one that failed.
    ///
    /// - Throws: ``IOError`` naming `name`, `address` and the failed write's errno;
    ///   `CancellationError`; ``ReactorError/closed``, ``ReactorError/loopShutDown``.
    nonisolated(nonsending) func settleWriteBehind(as name: IOError.Operation, address: SocketAddress?) async throws {
        while true {
            // Closed or shut down first: that is what cancelled a write-behind, not its peer.
            if let error = Self.unusable(io.snapshot()) { throw error }
            guard io.isWritingBehind else { break }
            try await io.writer.park()
        }
        if let failure = io.writeBehindFailure { throw IOError(name, failure, address: address) }
    }

    nonisolated(nonsending) private func ready(_ interest: Interest) async throws -> ReadinessEvent {
        while true {
            let snapshot = io.snapshot()
            if let error = Self.unusable(snapshot) { throw error }
            if !snapshot.readiness.isDisjoint(with: interest.wakeMask) {
                return ReadinessEvent(interest: interest, snapshot: snapshot)
            }
            try await park(interest)
        }
    }

    nonisolated(nonsending) private func park(_ interest: Interest) async throws {
        let waiter = interest == .readable ? io.reader : io.writer
        let reactor = eventLoop.reactor
        let io = self.io
        try await waiter.park(arm: { reactor.arm(io, for: interest.readiness) })
    }

    static func unusable(_ snapshot: ScheduledIO.Snapshot) -> ReactorError? {
        if snapshot.isClosed { return .closed }
        if snapshot.isShutDown { return .loopShutDown }
        return nil
    }

    /// Counts an operation out, and closes the descriptor if ``close()`` left that to it.
    func endOperation() {
        if io.endOperation() { try? eventLoop.release(io) }
    }
}
