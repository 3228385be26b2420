#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

extension SocketCalls {
    /// A new stream socket of `family`, connected to `address` and registered on `loop`:
    /// what ``TCPStream`` and ``UnixStream`` connects share. Nothing stays open on failure.
    ///
    /// A readiness backend sees a socket that is not connecting yet as hung up, and keeps
    /// that sticky: there the connect starts first, and the socket is registered once it
    /// is under way. A completion loop watches a descriptor only once a task waits for its
    /// readiness, so on its thread the socket is registered first, and the kernel runs
    /// the connect as one operation (io_uring `CONNECT`).
    ///
    /// - Parameter timeout: how long the connect may take; nil leaves it to the kernel.
    /// - Throws: ``IOError`` with operation `.connect` and `address` (`Errno.timedOut`
    ///   when `timeout` passes), or `.socket` or `.register`; `CancellationError`;
    ///   ``ReactorError/loopShutDown``.
    static func connect(
        _ family: SocketAddress.Family, to address: SocketAddress, timeout: Duration?, on loop: EventLoop
    ) async throws -> AsyncFD {
        let fd = try socket(family, type: CInt(SOCK_STREAM.rawValue), address: address)
        let started = !loop.runsCompletions
        let descriptor: AsyncFD
        do {
            let connected = try started && startConnect(fd, to: address)
            // In progress, or not started, the socket is not writable yet.
            descriptor = try AsyncFD(FileDescriptor(rawValue: fd), on: loop, assuming: connected ? .writable : [])
            if connected { return descriptor }
        } catch {
            discard(fd)
            throw error
        }
        do {
            guard let timeout else {
                try await descriptor.connect(to: address, started: started)
                return descriptor
            }
            do {
                try await withTimeout(timeout, on: loop) { try await descriptor.connect(to: address, started: started) }
            } catch is TimeoutError {
                throw IOError(.connect, .timedOut, address: address)
            }
            return descriptor
        } catch {
            try? descriptor.close()
            throw error
        }
    }
}

extension AsyncFD {
    /// Connects the socket to `address`, or, if the connect already `started`, waits
    /// for its end.
    ///
    /// On the loop's own thread, with a completion backend, a connect not started yet is
    /// one operation, whose address the kernel reads until the final completion; that
    /// address is allocated here, once per connect, and freed only after it. Elsewhere
    /// the connect starts, and the socket is writable once it ended; `SO_ERROR` tells how.
    ///
    /// - Throws: ``IOError`` with operation `.connect` and `address`; `CancellationError`;
    ///   ``ReactorError/closed``, ``ReactorError/loopShutDown``.
    func connect(to address: SocketAddress, started: Bool) async throws {
        if !started {
            if runsCompletions { return try await connectCompleting(to: address) }
            if try SocketCalls.startConnect(io.descriptor, to: address) { return }
        }
        _ = try await writable()
        try SocketCalls.finishConnect(io.descriptor, to: address)
    }

    private func connectCompleting(to address: SocketAddress) async throws {
        let name = UnsafeMutableRawBufferPointer.allocate(
            byteCount: MemoryLayout<sockaddr_storage>.size, alignment: MemoryLayout<sockaddr_storage>.alignment)
        defer { name.deallocate() }
        name.initializeMemory(as: UInt8.self, repeating: 0)
        let length = socklen_t(address.encode(into: name))
        let operation = CompletionOperation.connect(io.descriptor, name.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        _ = try await complete(operation, reading: false, as: .connect, address: address)
    }
}
