#if os(Linux)
import CReactor
#endif
import SystemPackage

extension EventLoop {
    /// Whether the caller's operations on this loop's descriptors run as completions;
    /// see ``AsyncFD/runsCompletions``.
    var runsCompletions: Bool {
        completions != nil && isCurrent
    }
}

/// Operations that a completion backend (io_uring) runs on the descriptor.
extension AsyncFD {
    /// Whether operations started here run as completions: the loop has a completion
    /// backend, and the caller runs on that loop's thread, where the ring is submitted.
    /// Elsewhere the same calls wait for readiness, as on any backend.
    var runsCompletions: Bool { eventLoop.runsCompletions }

    /// Runs `operation` to its completion and returns its count. See
    /// ``completion(of:reading:atOnce:as:address:)``.
    nonisolated(nonsending) func complete(
        _ operation: CompletionOperation, reading: Bool, atOnce: Bool = true, as name: IOError.Operation,
        address: SocketAddress?
    ) async throws -> Int {
        Int(try await completion(of: operation, reading: reading, atOnce: atOnce, as: name, address: address).result)
    }

    /// Runs `operation` to its completion and returns it, its result not negative.
    ///
    /// The task resumes only once the kernel is done with the operation's memory, also
    /// when it is cancelled (DESIGN §3.9). A result that arrives although the task was
    /// cancelled is returned: the bytes it moved are not lost.
    ///
    /// - Parameter atOnce: whether a writing operation may go to the kernel at once when
    ///   no other job would add to the loop's next submission. False for a caller that has
    ///   just found the descriptor unable to take it (`EAGAIN`): the kernel would only
    ///   park it, and the submission would cost a syscall for nothing.
    /// - Throws: ``IOError`` naming `name` and `address` with the operation's errno;
    ///   `CancellationError` if it was cancelled in time; ``ReactorError/closed`` or
    ///   ``ReactorError/loopShutDown`` if that is what cancelled it; ``ReactorError/busy``.
    // Never inlined, for the reason `perform` gives.
    @inline(never)
    nonisolated(nonsending) func completion(
        of operation: CompletionOperation, reading: Bool, atOnce: Bool = true, as name: IOError.Operation,
        address: SocketAddress?
    ) async throws -> Completion {
        let snapshot = io.beginOperation()
        defer { endOperation() }
        if let error = Self.unusable(snapshot) { throw error }
        while true {
            try Task.checkCancellation()
            // A writing operation (a datagram, a connect) is handed to the kernel at once
            // before a wait that sleeps: most then complete inside that call, and the task
            // goes on without waiting for the loop's turn. Reads wait for the turn, since
            // they rarely find their bytes already there.
            let eagerly = atOnce && !reading && eventLoop.nextWaitSleeps
            let completion = try await eventLoop.reactor.complete(operation, on: io, reading: reading, eagerly: eagerly)
            if completion.result >= 0 { return completion }
            switch Errno(rawValue: -completion.result) {
            case .interrupted:
                continue
            case .canceled:
                throw Self.unusable(io.snapshot()) ?? CancellationError()
            case .brokenPipe:
                #if os(Linux)
                // A write to a pipe without a reader raised SIGPIPE on this loop thread,
                // which blocks it; take it so that it is never delivered.
                creactor_consume_sigpipe()
                #endif
                throw IOError(name, .brokenPipe, address: address)
            case let errno:
                throw IOError(name, errno, address: address)
            }
        }
    }
}

extension EventLoop {
    /// Closes `io`'s descriptor once nothing uses it any more: closed, deregistered, and
    /// no operation in flight (``ScheduledIO`` grants that to exactly one caller).
    ///
    /// On the loop's own thread, a completion backend queues the close for the loop's
    /// next wait, which saves the syscall. The number stays taken until then, so nothing
    /// reuses it early. Deregistering queued the removal of the descriptor's readiness
    /// poll, if it had one, which holds the socket open: that removal goes in the same
    /// submission, and finds the poll by its user data, so the order of the two does
    /// not matter. The close's result is dropped: Linux frees the descriptor whatever it
    /// says. After shutdown the backend is gone, and `close(2)` runs instead; the
    /// backend closes on this thread, only once every registration is marked shut down.
    func release(_ io: ScheduledIO) throws(Errno) {
        if runsCompletions, !io.snapshot().isShutDown, let completions {
            completions.submitUnawaited(.close(io.descriptor))
            return
        }
        do {
            try FileDescriptor(rawValue: io.descriptor).close()
        } catch let error as Errno {
            throw error
        } catch {
            preconditionFailure("close(2) reports only an Errno: \(error)")
        }
    }
}
