#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// How bytes move on a stream descriptor: as syscalls after readiness, or as
/// operations a completion backend runs.
enum StreamKind {
    /// A stream socket: `recv`, and `send` with `MSG_NOSIGNAL`.
    case socket
    /// A pipe, FIFO or character device: `read` and `write`, `SIGPIPE` held back.
    case file

    func read(_ fd: CInt, _ buffer: UnsafeMutableRawBufferPointer) -> Int {
        switch self {
        case .socket: recv(fd, buffer.baseAddress, buffer.count, 0)
        case .file: Glibc.read(fd, buffer.baseAddress, buffer.count)
        }
    }

    func write(_ fd: CInt, _ bytes: UnsafeRawBufferPointer) -> Int {
        switch self {
        case .socket: send(fd, bytes.baseAddress, bytes.count, CInt(MSG_NOSIGNAL))
        case .file: withBrokenPipeSignalBlocked { Glibc.write(fd, bytes.baseAddress, bytes.count) }
        }
    }

    func readOperation(_ fd: CInt, _ buffer: UnsafeMutableRawBufferPointer) -> CompletionOperation {
        switch self {
        case .socket: .receive(fd, buffer, flags: 0)
        case .file: .read(fd, buffer)
        }
    }

    func selectingReadOperation(_ fd: CInt) -> CompletionOperation {
        switch self {
        case .socket: .receiveSelecting(fd)
        case .file: .readSelecting(fd)
        }
    }

    func writeOperation(_ fd: CInt, _ bytes: UnsafeRawBufferPointer) -> CompletionOperation {
        switch self {
        case .socket: .send(fd, bytes, flags: CInt(MSG_NOSIGNAL))
        case .file: .write(fd, bytes)
        }
    }
}

/// Reading and writing a byte stream (a pipe, a TCP or Unix stream socket) on a
/// registered descriptor.
///
/// On a readiness backend, a short read or write proves the stream drained or full for
/// now, so the readiness is cleared at once and the next call waits for an event
/// instead of paying `EAGAIN`. On a completion backend, called on the descriptor's own
/// loop, a stream socket's reads copy what its one multishot receive queued, a pipe's
/// are one operation each, and a write is a syscall, an operation the loop submits with
/// its next wait, or a write-behind (see `writeSome`).
extension AsyncFD {
    /// Reads at most `buffer.count` bytes, waiting until at least one is available.
    /// Returns 0 at end-of-stream.
    nonisolated(nonsending) func readSome(
        into buffer: UnsafeMutableRawBufferPointer, _ kind: StreamKind, as name: IOError.Operation,
        peer: SocketAddress? = nil
    ) async throws -> Int {
        if runsCompletions { return try await readSome(completing: buffer, kind, as: name, peer: peer) }
        return try await perform(.readable, as: name, address: peer, drained: { $0 > 0 && $0 < buffer.count }) { (fd) throws(Errno) in
            try valueOrErrno { kind.read(fd, buffer) }
        }
    }

    /// On a completion backend's own loop: reads at most `buffer.count` bytes.
    ///
    /// A stream socket reads through its ``ReceiveQueue``: one multishot receive, armed
    /// by the first read, brings the bytes into provided buffers, and each read copies
    /// what is queued, with no submission and, when bytes are there, no suspension. A
    /// pipe (or a kernel that refuses multishot receive) submits one read per call,
    /// after what an earlier multishot queued.
    // Never inlined, for the reason `perform` gives: its waits are for io_uring alone.
    @inline(never)
    nonisolated(nonsending) private func readSome(
        completing buffer: UnsafeMutableRawBufferPointer, _ kind: StreamKind, as name: IOError.Operation,
        peer: SocketAddress?
    ) async throws -> Int {
        let queue = kind == .socket && !ReceiveQueue.isRefused.load(ordering: .relaxed)
            ? receiveQueue : queuedBytes
        while true {
            if let error = Self.unusable(io.snapshot()) { throw error }
            if let queue, let queued = await queue.copyQueued(into: buffer) {
                guard queued < 0 else { return queued }
                throw IOError(name, Errno(rawValue: CInt(-queued)), address: peer)
            }
            // After the ring ran dry, one read brings its own buffer before the next arming.
            // A kernel that refused the first multishot (EINVAL) says so by its end.
            guard let queue, !queue.takeRanDry(), !ReceiveQueue.isRefused.load(ordering: .relaxed) else {
                return try await complete(kind.readOperation(io.descriptor, buffer), reading: true, as: name, address: peer)
            }
            if !queue.isArmed { try queue.armForReads() }
            try await queue.waitForBytes()
        }
    }

    /// Reads at most `buffer.count` bytes into an array. See ``readSome(into:_:as:peer:)-(UnsafeMutableRawBufferPointer,_,_,_)``.
    nonisolated(nonsending) func readSome(
        into buffer: inout [UInt8], _ kind: StreamKind, as name: IOError.Operation,
        peer: SocketAddress? = nil
    ) async throws -> Int {
        // The caller's array is exclusively ours, and unique after this, until we return:
        // nothing can move its storage while the operation holds a pointer into it.
        let storage = buffer.withUnsafeMutableBytes { $0 }
        return try await readSome(into: storage, kind, as: name, peer: peer)
    }

    /// Writes all of `bytes`, waiting whenever the stream is full.
    nonisolated(nonsending) func writeAll(
        _ bytes: UnsafeRawBufferPointer, _ kind: StreamKind, as name: IOError.Operation,
        peer: SocketAddress? = nil
    ) async throws {
        var written = 0
        while written < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[written...])
            if runsCompletions {
                written += try await writeSome(rest, kind, as: name, peer: peer)
                continue
            }
            written += try await perform(.writable, as: name, address: peer, drained: { $0 < rest.count }) { (fd) throws(Errno) in
                try valueOrErrno { kind.write(fd, rest) }
            }
        }
    }

    /// On a completion backend's own loop: writes a prefix of `bytes`, and returns its
    /// count; all of them if they went behind the writer (``WriteBehind``).
    // Never inlined, for the reason `perform` gives: its waits are for io_uring alone.
    @inline(never)
    nonisolated(nonsending) private func writeSome(
        _ bytes: UnsafeRawBufferPointer, _ kind: StreamKind, as name: IOError.Operation, peer: SocketAddress?
    ) async throws -> Int {
        if io.hasWriteBehind { try await settleWriteBehind(as: name, address: peer) }
        // Before a wait that sleeps, a write(2) now costs as many system calls as a
        // submission and no completion. Otherwise the write rides along with the wait's
        // call. The ring also takes it when the stream is full: a write now would find
        // it full again.
        let idle = eventLoop.nextWaitSleeps
        if idle, !io.isAwaitingWrite, let sent = try attemptNow(
            as: name, address: peer, { (fd) throws(Errno) in try valueOrErrno { kind.write(fd, bytes) } })
        {
            return sent
        }
        // Sharing the submission, a short write goes behind its writer.
        if !idle, !io.isAwaitingWrite, WriteBehind.takes(bytes.count, on: eventLoop) {
            // Called through the stored property: a local copy of it cost a retain per write.
            if writeBehind == nil { writeBehind = WriteBehind(io: io, loop: eventLoop, kind: kind) }
            guard writeBehind!.start(bytes) else { throw Self.unusable(io.snapshot()) ?? ReactorError.closed }
            return bytes.count
        }
        return try await complete(
            kind.writeOperation(io.descriptor, bytes), reading: false, atOnce: false, as: name, address: peer)
    }

    /// Writes all of a collection of bytes; one that is not contiguous is copied first.
    nonisolated(nonsending) func writeAll(
        _ bytes: some Collection<UInt8>, _ kind: StreamKind, as name: IOError.Operation,
        peer: SocketAddress? = nil
    ) async throws {
        // `bytes` is a constant this call keeps alive and nobody can mutate: its
        // contiguous storage stays where it is until the call returns.
        guard let storage = bytes.withContiguousStorageIfAvailable({ UnsafeRawBufferPointer($0) }) else {
            return try await writeAll(Array(bytes), kind, as: name, peer: peer)
        }
        defer { withExtendedLifetime(bytes) {} }
        try await writeAll(storage, kind, as: name, peer: peer)
    }
}
