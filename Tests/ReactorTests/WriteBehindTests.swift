import CReactor
import Glibc
import Synchronization
import SystemPackage
import Testing

@testable import Reactor

/// On the loop's thread: queues a job, so that the loop has other work, and runs `write`
/// behind it. Returns whether `write` returned before the queued job ran: it did not
/// wait for the loop's turn.
private func writeOnBusyLoop(_ loop: EventLoop, _ write: () async throws -> Void) async throws -> Bool {
    let ran = Counter()
    loop.execute { ran.increment() }
    try await write()
    return ran.value == 0
}

/// Fills the pipe behind `writer` until the kernel takes no more, without the loop.
private func fill(_ writer: PipeWriter) -> Int {
    let chunk = [UInt8](repeating: 0xEE, count: 4096)
    var total = 0
    while true {
        let count = chunk.withUnsafeBytes { Glibc.write(writer.sink.fileDescriptor.rawValue, $0.baseAddress, $0.count) }
        if count <= 0 { return total }
        total += count
    }
}

/// One read of up to 64 KiB from `stream`.
private func readSome(_ stream: UnixStream) async throws -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: 64 * 1024)
    let count = try await stream.read(into: &bytes)
    return Array(bytes[..<count])
}

/// Calls `read` on `loop` until it returns nothing, the stream's end; returns what it read.
private func readToEnd(
    on loop: EventLoop, _ read: @escaping @Sendable () async throws -> [UInt8]
) async throws -> [UInt8] {
    try await onLoop(loop) {
        var bytes: [UInt8] = []
        while true {
            let chunk = try await read()
            if chunk.isEmpty { return bytes }
            bytes += chunk
        }
    }
}

extension ReactorTests {
    @Suite(.enabled(if: uringRuns, "the kernel refuses io_uring here"), .timeLimit(.minutes(1)))
    struct WriteBehindTests {
        @Test("a short write on a busy loop returns before the loop's turn, and every byte arrives in order")
        func returnsBeforeTheTurn() async throws {
            try await withLoop(.uring) { loop in
                let (reader, writer) = try UnixStream.pair(on: loop)
                let before = try await uringSubmissions(of: CREACTOR_IORING_OP_SEND, on: loop)
                let early = try await onLoop(loop) {
                    var early = 0
                    for index in 0..<100 {
                        if try await writeOnBusyLoop(loop, { try await writer.write(message(index)) }) { early += 1 }
                    }
                    try writer.shutdown(.writing)
                    return early
                }
                // Each write after the first waits for the one behind it, in the turn that
                // runs the queued job; the first returns before it.
                #expect(early >= 1)
                #expect(try await uringSubmissions(of: CREACTOR_IORING_OP_SEND, on: loop) - before >= early)
                let received = try await readToEnd(on: loop) { try await readSome(reader) }
                #expect(received == (0..<100).flatMap { message($0) })
                try reader.close()
                try writer.close()
            }
        }

        @Test("the error a write-behind met is thrown by every later write, and raises no SIGPIPE")
        func failureReachesTheNextWrite() async throws {
            try await withLoop(.uring) { loop in
                let pipe = try Pipe(on: loop)
                try pipe.reader.close()
                let (early, errors) = try await onLoop(loop) { () -> (Bool, [Errno?]) in
                    let early = try await writeOnBusyLoop(loop) { try await pipe.writer.write([1, 2, 3]) }
                    var errors: [Errno?] = []
                    for _ in 0..<2 {
                        do {
                            try await pipe.writer.write([4])
                            errors.append(nil)
                        } catch let error as IOError {
                            #expect(error.operation == .write)
                            errors.append(error.errno)
                        }
                    }
                    return (early, errors)
                }
                #expect(early)
                #expect(errors == [.brokenPipe, .brokenPipe])
                try pipe.writer.close()
            }
        }

        @Test("a close right after a write-behind lets its bytes out before end-of-file")
        func closeLetsTheBytesOut() async throws {
            try await withLoop(.uring) { loop in
                let pipe = try Pipe(on: loop)
                let sent = patternBytes(10_000)
                let early = try await onLoop(loop) {
                    let early = try await writeOnBusyLoop(loop) { try await pipe.writer.write(sent) }
                    try pipe.writer.close()
                    return early
                }
                #expect(early)
                let received = try await readToEnd(on: loop) { try await pipe.reader.read(upTo: 64 * 1024) }
                #expect(received.count == sent.count)
                #expect(received.elementsEqual(sent))
                try pipe.reader.close()
            }
        }

        @Test("a shutdown of the writing side follows the write-behind's bytes")
        func shutdownFollowsTheBytes() async throws {
            try await withLoop(.uring) { loop in
                let (reader, writer) = try UnixStream.pair(on: loop)
                let sent = patternBytes(10_000)
                let early = try await onLoop(loop) {
                    let early = try await writeOnBusyLoop(loop) { try await writer.write(sent) }
                    try writer.shutdown(.writing)
                    return early
                }
                #expect(early)
                let received = try await readToEnd(on: loop) { try await readSome(reader) }
                #expect(received.count == sent.count)
                #expect(received.elementsEqual(sent))
                try reader.close()
                try writer.close()
            }
        }

        @Test("a write-behind the reader never takes is cancelled once its closed descriptor has lingered")
        func lingerEnds() async throws {
            try await withLoop(.uring) { loop in
                let pipe = try Pipe(on: loop)
                let filled = fill(pipe.writer)
                let early = try await onLoop(loop) {
                    let early = try await writeOnBusyLoop(loop) { try await pipe.writer.write([1, 2, 3]) }
                    try WriteBehind.$linger.withValue(.milliseconds(20)) { try pipe.writer.close() }
                    return early
                }
                #expect(early)
                // The pending write holds its pool buffer, and the descriptor, until the
                // cancel ends it; then the reader sees what the pipe held, and its end.
                try await waitUntil { loop.lentBufferCount == 0 }
                let received = try await readToEnd(on: loop) { try await pipe.reader.read(upTo: 64 * 1024) }
                #expect(received.count == filled)
                #expect(try await onLoop(loop) { loop.reactor.operationsInFlight } == 0)
                try pipe.reader.close()
            }
        }

        @Test("a write waiting for a write-behind can be cancelled, and a close wakes the next")
        func waitingWriteCancelsAndCloses() async throws {
            try await withLoop(.uring) { loop in
                let pipe = try Pipe(on: loop)
                _ = fill(pipe.writer)
                #expect(try await onLoop(loop) { try await writeOnBusyLoop(loop) { try await pipe.writer.write([1]) } })
                let cancelled = Task(executorPreference: loop) { try await pipe.writer.write([2]) }
                try await waitUntil { pipe.writer.sink.io.writer.isWaiting }
                cancelled.cancel()
                await #expect(throws: CancellationError.self) { try await cancelled.value }
                let closed = Task(executorPreference: loop) { try await pipe.writer.write([3]) }
                try await waitUntil { pipe.writer.sink.io.writer.isWaiting }
                try WriteBehind.$linger.withValue(.milliseconds(1)) { try pipe.writer.close() }
                await #expect(throws: ReactorError.closed) { try await closed.value }
                try pipe.reader.close()
            }
        }

        @Test("shutting the loop down with a write-behind pending ends it, gives its buffer back, and wakes the writer behind it")
        func shutdownEndsIt() async throws {
            let group = try await EventLoopGroup(loopCount: 1, backend: .uring)
            let loop = group.loops[0]
            let pipe = try Pipe(on: loop)
            _ = fill(pipe.writer)
            #expect(try await onLoop(loop) { try await writeOnBusyLoop(loop) { try await pipe.writer.write([1]) } })
            let behind = Task(executorPreference: loop) { try await pipe.writer.write([2]) }
            try await waitUntil { pipe.writer.sink.io.writer.isWaiting }
            #expect(loop.lentBufferCount == 1)
            await group.shutdownGracefully()
            await #expect(throws: ReactorError.loopShutDown) { try await behind.value }
            #expect(loop.lentBufferCount == 0)
            try pipe.reader.close()
            try pipe.writer.close()
        }

        @Test("a write from off the loop waits for the write-behind, and comes after its bytes")
        func offLoopWriteComesAfter() async throws {
            try await withLoop(.uring) { loop in
                let pipe = try Pipe(on: loop)
                let offLoopWrote = Counter()
                let (early, offLoop) = try await onLoop(loop) {
                    let early = try await writeOnBusyLoop(loop) { try await pipe.writer.write([1, 2]) }
                    let offLoop = Task.detached {
                        try await pipe.writer.write([3, 4])
                        offLoopWrote.increment()
                    }
                    // Held on the loop's thread, the pending write cannot reach the pipe: the
                    // write from off the loop, which finds room, must wait for it, not go first.
                    let limit = ContinuousClock.now.advanced(by: .seconds(10))
                    while !pipe.writer.sink.io.writer.isWaiting, offLoopWrote.value == 0, ContinuousClock.now < limit {
                        sched_yield()
                    }
                    return (early, offLoop)
                }
                #expect(early)
                try await offLoop.value
                #expect(try await onLoop(loop) { try await pipe.reader.read(upTo: 16) } == [1, 2, 3, 4])
                try pipe.reader.close()
                try pipe.writer.close()
            }
        }

        @Test("a write on a loop with nothing else to run joins the submissions already queued for its turn")
        func joinsQueuedSubmissions() async throws {
            try await withLoop(.uring) { loop in
                let (firstReader, firstWriter) = try UnixStream.pair(on: loop)
                let (secondReader, secondWriter) = try UnixStream.pair(on: loop)
                let before = try await uringSubmissions(of: CREACTOR_IORING_OP_SEND, on: loop)
                let first = try await onLoop(loop) {
                    let early = try await writeOnBusyLoop(loop) { try await firstWriter.write(message(1)) }
                    // Behind the queued job: when this task runs again, in the same turn, the
                    // run queue is empty, but the first write's submission waits for the loop.
                    await Task.yield()
                    try await secondWriter.write(message(2))
                    return early
                }
                #expect(first)
                #expect(try await uringSubmissions(of: CREACTOR_IORING_OP_SEND, on: loop) - before == 2)
                #expect(try await onLoop(loop) { try await readSome(firstReader) } == message(1))
                #expect(try await onLoop(loop) { try await readSome(secondReader) } == message(2))
                for stream in [firstReader, firstWriter, secondReader, secondWriter] { try stream.close() }
            }
        }

        @Test("a write on a loop with nothing else to run joins the wait that bytes already arrived make return at once")
        func joinsArrivedCompletions() async throws {
            try await withLoop(.uring) { loop in
                let (firstReader, firstWriter) = try UnixStream.pair(on: loop)
                let (secondReader, secondWriter) = try UnixStream.pair(on: loop)
                let received = Task(executorPreference: loop) { try await readSome(firstReader) }
                try await waitUntil { firstReader.descriptor.io.isAwaitingRead }
                let before = try await uringSubmissions(of: CREACTOR_IORING_OP_SEND, on: loop)
                try await onLoop(loop) {
                    // Bytes reach the first reader's receive while the loop runs this job:
                    // the kernel keeps their completion for the loop's next wait, which
                    // then returns at once, so the write goes with it instead of by send(2).
                    let peer = firstWriter.descriptor.fileDescriptor.rawValue
                    let bytes = message(1)
                    let sent = bytes.withUnsafeBytes { Glibc.write(peer, $0.baseAddress, $0.count) }
                    #expect(sent == bytes.count)
                    try await secondWriter.write(message(2))
                }
                #expect(try await uringSubmissions(of: CREACTOR_IORING_OP_SEND, on: loop) - before == 1)
                #expect(try await received.value == message(1))
                #expect(try await onLoop(loop) { try await readSome(secondReader) } == message(2))
                for stream in [firstReader, firstWriter, secondReader, secondWriter] { try stream.close() }
            }
        }
    }
}
