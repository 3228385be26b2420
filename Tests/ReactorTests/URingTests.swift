import CReactor
import Glibc
import SystemPackage
import Testing

@testable import Reactor

/// Whether this kernel runs the io_uring backend, for the suites that need it.
let uringRuns = BackendKind.availableHere.contains(.uring)

/// Whether this kernel consumes provided buffers incrementally (Linux 6.12).
let incrementalBuffersRun: Bool = {
    guard uringRuns, let backend = try? URingBackend(entries: 8, completions: 16) else { return false }
    defer { backend.close() }
    return backend.providedBuffers.isIncremental
}()

/// The ways this kernel consumes provided buffers, as `incremental` arguments: whole
/// buffers everywhere, and incrementally where the kernel can.
let bufferModes = incrementalBuffersRun ? [true, false] : [false]

/// Runs `body` with a fresh one-loop group on io_uring, whose provided-buffer ring holds
/// `buffers` buffers and consumes them incrementally or whole.
func withURingLoop<Result: Sendable>(
    incremental: Bool, buffers: Int = URingBackend.providedBufferCount, _ body: (EventLoop) async throws -> Result
) async throws -> Result {
    try await URingBackend.$incrementalProvidedBuffers.withValue(incremental) {
        try await URingBackend.$providedBufferCount.withValue(buffers) {
            try await withLoop(.uring) { loop in
                #expect(loop.reactor.completions?.providedBuffers.isIncremental == incremental)
                return try await body(loop)
            }
        }
    }
}

/// How many entries with `opcode` the loop's ring was handed so far: proof that an
/// operation went through the ring, not through readiness and a syscall.
func uringSubmissions(of opcode: UInt8, on loop: EventLoop) async throws -> Int {
    try await onLoop(loop) {
        try #require(loop.reactor.completions as? URingBackend).submissions(of: opcode)
    }
}

extension ReactorTests {
    @Suite(.enabled(if: uringRuns, "the kernel refuses io_uring here"), .timeLimit(.minutes(1)))
    struct URingTests {
        @Test("a read cancelled while the kernel holds its buffer returns once the kernel is done with it")
        func cancelledReadReleasesBuffer() async throws {
            try await withLoop(.uring) { loop in
                let pipe = try Pipe(on: loop)
                nonisolated(unsafe) let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
                defer { buffer.deallocate() }
                buffer.initializeMemory(as: UInt8.self, repeating: 0xAA)
                for round in 0..<20 {
                    let reading = Task(executorPreference: loop) { try await pipe.reader.read(into: buffer) }
                    try await waitUntil { pipe.reader.source.io.isAwaitingRead }
                    reading.cancel()
                    await #expect(throws: CancellationError.self) { try await reading.value }
                    // The cancelled read is over in the kernel: what is written now reaches
                    // the next read, and the first buffer is never touched.
                    try await onLoop(loop) { try await pipe.writer.write([UInt8(round)]) }
                    #expect(try await onLoop(loop) { try await pipe.reader.read(upTo: 8) } == [UInt8(round)])
                    #expect(buffer.allSatisfy { $0 == 0xAA })
                }
                try pipe.reader.close()
                try pipe.writer.close()
            }
        }

        @Test("a cancel racing a read's data loses no byte: the read returns it, or the next read does")
        func cancelRacingDataLosesNothing() async throws {
            try await withLoop(.uring) { loop in
                let pipe = try Pipe(on: loop)
                let writer = pipe.writer.sink.fileDescriptor.rawValue
                try await expectCancelRacingByteLosesNothing(
                    rounds: 200, on: loop, isWaiting: { pipe.reader.source.io.isAwaitingRead },
                    write: { byte in withUnsafeBytes(of: byte) { Glibc.write(writer, $0.baseAddress, 1) } },
                    read: { try await pipe.reader.read(upTo: 8) })
                try pipe.reader.close()
                try pipe.writer.close()
            }
        }

        @Test("closing a socket with a read in flight ends the read and releases the socket at once")
        func closeReleasesSocketWithReadInFlight() async throws {
            try await withLoop(.uring) { loop in
                let (local, peer) = try makeSocketPair()
                let stream = try AsyncFD(FileDescriptor(rawValue: local), on: loop)
                nonisolated(unsafe) let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
                defer { buffer.deallocate() }
                let reading = Task(executorPreference: loop) {
                    try await stream.readSome(into: buffer, .socket, as: .receive)
                }
                try await waitUntil { stream.io.isAwaitingRead }
                try stream.close()
                await #expect(throws: ReactorError.closed) { try await reading.value }
                // The kernel let go of the socket: the peer reads end-of-stream.
                var byte: UInt8 = 0
                try await waitUntil { recv(peer, &byte, 1, CInt(MSG_DONTWAIT)) == 0 }
                close(peer)
            }
        }

        @Test("shutting the loop down with operations in flight resumes each once the kernel ended it")
        func shutdownEndsOperationsInFlight() async throws {
            let group = try await EventLoopGroup(loopCount: 1, backend: .uring)
            let loop = group.loops[0]
            let pipes = try (0..<16).map { _ in try Pipe(on: loop) }
            let readers = pipes.map { pipe in
                Task(executorPreference: loop) { try await pipe.reader.read(upTo: 8) }
            }
            for pipe in pipes { try await waitUntil { pipe.reader.source.io.isAwaitingRead } }
            await group.shutdownGracefully()
            for reader in readers {
                await #expect(throws: ReactorError.loopShutDown) { try await reader.value }
            }
            for pipe in pipes {
                try pipe.reader.close()
                try pipe.writer.close()
            }
        }

        @Test("a burst of connections is accepted by one multishot accept")
        func multishotAcceptBurst() async throws {
            try await withEventLoopGroup(loopCount: 2, backend: .uring) { group in
                let listener = try TCPListener.bind(to: .ipv4(127, 0, 0, 1, port: 0), backlog: 1_024, on: group.loops[0])
                let address = try listener.localAddress
                let count = 300
                let accepting = Task(executorPreference: group.loops[0]) { () -> [TCPStream] in
                    var accepted: [TCPStream] = []
                    for _ in 0..<count { accepted.append(try await listener.accept()) }
                    return accepted
                }
                let clients = try await onLoop(group.loops[1]) {
                    try await withThrowingTaskGroup(of: TCPStream.self) { connecting in
                        for _ in 0..<count {
                            connecting.addTask { try await TCPStream.connect(to: address, on: group.loops[1]) }
                        }
                        return try await connecting.reduce(into: []) { $0.append($1) }
                    }
                }
                let accepted = try await accepting.value
                #expect(accepted.count == count)
                #expect(Set(accepted.map { $0.peerAddress }) == Set(try clients.map { try $0.localAddress }))
                let armings = try await onLoop(group.loops[0]) {
                    listener.descriptor.queuedConnections?.armings ?? 0
                }
                #expect(armings == 1, "one submission accepted the whole burst")
                for stream in accepted + clients { try stream.close() }
                try listener.close()
            }
        }

        @Test("connections accepted by the kernel after the listener closed are closed, not leaked")
        func lateAcceptsAreClosed() async throws {
            try await withLoop(.uring) { loop in
                let listener = try TCPListener.bind(to: .ipv4(127, 0, 0, 1, port: 0), backlog: 1_024, on: loop)
                let address = try listener.localAddress
                let first = Task(executorPreference: loop) { try await listener.accept() }
                let clients = try (0..<20).map { _ in try connectBlocking(to: address) }
                try await first.value.close()
                // The rest are in the kernel's hands or queued in the listener: closing it
                // must close every one of them, so each client reads end-of-stream.
                try await onLoop(loop) { try listener.close() }
                for client in clients.dropFirst() {
                    var byte: UInt8 = 0
                    try await waitUntil {
                        let result = recv(client, &byte, 1, CInt(MSG_DONTWAIT))
                        return result == 0 || (result < 0 && errno == ECONNRESET)
                    }
                }
                for client in clients { close(client) }
            }
        }

        @Test("whole-buffer mode: chunks beyond the provided-buffer ring come from the pool, and the ring recovers")
        func providedBufferExhaustion() async throws {
            try await withURingLoop(incremental: false, buffers: 4) { loop in
                let ring = try #require(loop.reactor.completions?.providedBuffers)
                let pairs = try (0..<8).map { _ in try UnixStream.pair(on: loop) }
                for round in 0..<3 {
                    let (gate, open) = AsyncStream<Void>.makeStream()
                    let readers = pairs.enumerated().map { index, pair in
                        Task(executorPreference: loop) { () -> [UInt8] in
                            var iterator = pair.0.chunks.makeAsyncIterator()
                            let chunk = try #require(try await iterator.next())
                            let bytes = Array(chunk)
                            // Hold the chunk, and its buffer, until every reader has one.
                            for await _ in gate { break }
                            return bytes
                        }
                    }
                    for (index, pair) in pairs.enumerated() {
                        try await onLoop(loop) { try await pair.1.write([UInt8(index), UInt8(round)]) }
                    }
                    try await waitUntil { loop.lentBufferCount == pairs.count }
                    // The ring lends its four; the other reads met ENOBUFS and took pool buffers.
                    #expect(ring.inUse == ring.count)
                    #expect(loop.buffers.lentCount == pairs.count - ring.count)
                    open.finish()
                    for (index, reader) in readers.enumerated() {
                        #expect(try await reader.value == [UInt8(index), UInt8(round)])
                    }
                    #expect(loop.lentBufferCount == 0)
                }
                for pair in pairs {
                    try pair.0.close()
                    try pair.1.close()
                }
            }
        }

        @Test("when io_uring is refused, a loop asked for it runs epoll, says so, and serves")
        func fallsBackToEpoll() async throws {
            try await URingBackend.$forcedSetupError.withValue(.notPermitted) {
                try await withLoop(.uring) { loop in
                    #expect(loop.backend == .epoll)
                    #expect(BackendKind.hasReportedFallback)
                    let pipe = try Pipe(on: loop)
                    try await onLoop(loop) { try await pipe.writer.write([42]) }
                    #expect(try await onLoop(loop) { try await pipe.reader.read(upTo: 4) } == [42])
                    try pipe.reader.close()
                    try pipe.writer.close()
                }
            }
        }

        @Test("more completions than the completion queue holds all arrive (CQ overflow)")
        func completionQueueOverflow() throws {
            let backend = try URingBackend(entries: 8, completions: 16)
            defer { backend.close() }
            let count = 100
            var pipes: [(reader: CInt, writer: CInt)] = []
            defer {
                for pipe in pipes {
                    close(pipe.reader)
                    close(pipe.writer)
                }
            }
            var events: [BackendEvent] = []
            for index in 0..<count {
                var ends: [CInt] = [-1, -1]
                #expect(creactor_pipe(&ends) == 0)
                pipes.append((ends[0], ends[1]))
                let token = Token(index: index, generation: 1)
                try backend.register(ends[0], token: token)
                backend.arm(ends[0], token: token, interest: .readable)
            }
            try backend.wait(into: &events, timeout: .zero)
            // Every poll becomes ready before the ring is entered again: 100 completions
            // meet a queue of 16.
            for pipe in pipes {
                var byte: UInt8 = 1
                #expect(Glibc.write(pipe.writer, &byte, 1) == 1)
            }
            var seen = Set<Int>()
            let limit = ContinuousClock.now.advanced(by: .seconds(30))
            while seen.count < count && ContinuousClock.now < limit {
                events.removeAll()
                try backend.wait(into: &events, timeout: .milliseconds(100))
                for event in events where event.readiness.contains(.readable) { seen.insert(event.token.index) }
            }
            #expect(seen.count == count)
        }
    }
}

/// A client socket connected the blocking way, for tests that need many at once.
private func connectBlocking(to address: SocketAddress) throws -> CInt {
    let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw IOError(.create, Errno(rawValue: errno)) }
    let result = address.withSockAddr { connect(fd, $0, $1) }
    guard result == 0 else {
        close(fd)
        throw IOError(.connect, Errno(rawValue: errno))
    }
    return fd
}
