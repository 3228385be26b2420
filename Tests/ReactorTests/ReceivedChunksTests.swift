import Glibc
import SystemPackage
import Testing

@testable import Reactor

/// The buffers lent to chunks on `loop`, leaving out those that `stream`'s multishot
/// receive (io_uring) queued ahead of the reader.
private func lentToChunks(_ loop: EventLoop, _ stream: UnixStream) -> Int {
    loop.lentBufferCount - (stream.descriptor.queuedBytes?.ringSlices ?? 0)
}

/// Runs `body` with a fresh loop on `backend` and a connected Unix stream pair on it,
/// both ends closed afterwards.
private func withStreamPair(
    _ backend: BackendKind, _ body: (EventLoop, UnixStream, UnixStream) async throws -> Void
) async throws {
    try await withLoop(backend) { loop in
        let (reader, writer) = try UnixStream.pair(on: loop)
        // Closing twice does nothing, so a body may close an end itself.
        defer {
            try? reader.close()
            try? writer.close()
        }
        try await body(loop, reader, writer)
    }
}

extension ReactorTests {
    @Suite struct ReceivedChunksTests {
        @Test("1 MiB arrives intact and in order over many chunks, one buffer lent at a time", arguments: BackendKind.availableHere)
        func bytesInOrder(backend: BackendKind) async throws {
            try await withStreamPair(backend) { loop, reader, writer in
                let sent = patternBytes(1 << 20)
                let writing = Task(executorPreference: loop) {
                    for start in stride(from: 0, to: sent.count, by: 50_000) {
                        try await writer.write(sent[start..<min(start + 50_000, sent.count)])
                    }
                    try writer.shutdown(.writing)
                }
                let (received, chunks, mostLent) = try await onLoop(loop) { () -> ([UInt8], Int, Int) in
                    var received: [UInt8] = []
                    var chunks = 0
                    var mostLent = 0
                    for try await chunk in reader.chunks {
                        mostLent = max(mostLent, lentToChunks(loop, reader))
                        received.append(contentsOf: chunk)
                        chunks += 1
                    }
                    return (received, chunks, mostLent)
                }
                try await writing.value
                #expect(sameBytes(received, sent))
                // On io_uring the kernel's provided buffers are larger than the pool's.
                let largestBuffer = backend == .uring ? ProvidedBuffers.bufferSize : BufferPool.bufferSize
                #expect(chunks >= sent.count / largestBuffer)
                #expect(mostLent == 1)
                #expect(loop.lentBufferCount == 0)
            }
        }

        @Test("end-of-stream ends the sequence and returns the buffer; next() then keeps returning nil", arguments: BackendKind.availableHere)
        func endOfStream(backend: BackendKind) async throws {
            try await withStreamPair(backend) { loop, reader, writer in
                let (first, end, again, lent) = try await onLoop(loop) { () -> ([UInt8]?, Bool, Bool, Int) in
                    try await writer.write([1, 2, 3])
                    try writer.shutdown(.writing)
                    var iterator = reader.chunks.makeAsyncIterator()
                    let first = try await iterator.next().map { Array($0) }
                    let end = try await iterator.next() == nil
                    let lent = loop.lentBufferCount
                    let again = try await iterator.next() == nil
                    return (first, end, again, lent)
                }
                #expect(first == [1, 2, 3])
                #expect(end)
                #expect(lent == 0, "the end gives the buffer back while the iterator lives")
                #expect(again)
            }
        }

        @Test("a chunk is a collection of bytes that write, withUnsafeBytes and slices accept", arguments: BackendKind.availableHere)
        func chunkIsBytes(backend: BackendKind) async throws {
            try await withStreamPair(backend) { loop, reader, writer in
                let (copy, copyWriter) = try UnixStream.pair(on: loop)
                let (echoed, viewed) = try await onLoop(loop) { () -> ([UInt8], [UInt8]) in
                    try await writer.write([10, 20, 30, 40])
                    var iterator = reader.chunks.makeAsyncIterator()
                    let chunk = try #require(try await iterator.next())
                    try await copyWriter.write(chunk)
                    try await copyWriter.write(chunk[2...])
                    let viewed = chunk.withUnsafeBytes { Array($0) } + [chunk[3]]
                    return (try await copy.read(exactly: 6), viewed)
                }
                #expect(echoed == [10, 20, 30, 40, 30, 40])
                #expect(viewed == [10, 20, 30, 40, 40])
                try copy.close()
                try copyWriter.close()
            }
        }

        @Test("next() ends the previous chunk: its generation is stale, and a new chunk holds the one buffer", arguments: BackendKind.availableHere)
        func nextEndsPreviousChunk(backend: BackendKind) async throws {
            try await withStreamPair(backend) { loop, reader, writer in
                let states = try await onLoop(loop) { () -> [Bool] in
                    var iterator = reader.chunks.makeAsyncIterator()
                    try await writer.write([1])
                    let first = try #require(try await iterator.next())
                    let firstValid = first.isValid
                    try await writer.write([2])
                    let second = try #require(try await iterator.next())
                    return [firstValid, first.isValid, second.isValid, loop.lentBufferCount == 1]
                }
                #expect(states == [true, false, true, true])
                #expect(loop.lentBufferCount == 0)
            }
        }

        @Test("reading a chunk after the iterator moved on traps")
        func useAfterNextTraps() async throws {
            let result = try await #require(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                try await withLoop(.default) { loop in
                    try await onLoop(loop) {
                        let (reader, writer) = try UnixStream.pair()
                        try await writer.write([1])
                        var iterator = reader.chunks.makeAsyncIterator()
                        let chunk = try #require(try await iterator.next())
                        try writer.shutdown(.writing)
                        _ = try await iterator.next()
                        _ = chunk[0]
                    }
                }
            }
            #expect(String(decoding: result.standardErrorContent, as: UTF8.self).contains("ReceivedChunk was used after"))
        }

        @Test("reading chunks on a thread that is not the descriptor's loop traps")
        func offLoopTraps() async throws {
            let result = try await #require(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                try await withLoop(.default) { loop in
                    let (reader, writer) = try UnixStream.pair(on: loop)
                    try await writer.write([1])
                    // Ends the sequence, so that without the trap the process exits normally.
                    try writer.shutdown(.writing)
                    for try await _ in reader.chunks {}
                }
            }
            #expect(String(decoding: result.standardErrorContent, as: UTF8.self).contains("is iterated on its descriptor's loop"))
        }

        @Test("breaking out of the loop, or dropping an iterator that holds a chunk, returns the buffer", arguments: BackendKind.availableHere)
        func droppedIteratorReturnsBuffer(backend: BackendKind) async throws {
            try await withStreamPair(backend) { loop, reader, writer in
                let (lentInside, lentAfter) = try await onLoop(loop) { () -> (Int, Int) in
                    try await writer.write(patternBytes(100_000))
                    var lentInside = 0
                    for try await chunk in reader.chunks {
                        lentInside = lentToChunks(loop, reader)
                        #expect(!chunk.isEmpty)
                        break
                    }
                    return (lentInside, loop.lentBufferCount)
                }
                #expect(lentInside == 1)
                #expect(lentAfter == 0)
                let held = try await onLoop(loop) { () -> Int in
                    var iterator = reader.chunks.makeAsyncIterator()
                    let chunk = try await iterator.next()
                    return withExtendedLifetime((iterator, chunk)) { loop.lentBufferCount }
                }
                #expect(held == 1)
                #expect(loop.lentBufferCount == 0)
            }
        }

        @Test("a reset throws the read's IOError, returns the buffer and finishes the iterator", arguments: BackendKind.availableHere)
        func errorReturnsBuffer(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let listener = try TCPListener.bind(to: .ipv4(127, 0, 0, 1, port: 0), on: loop)
                let client = try await onLoop(loop) { try await TCPStream.connect(to: try listener.localAddress) }
                let connection = try await onLoop(loop) { try await listener.accept() }
                let reading = Task(executorPreference: loop) { () -> (IOError?, Int, Bool) in
                    var iterator = connection.chunks.makeAsyncIterator()
                    do {
                        _ = try await iterator.next()
                        return (nil, loop.lentBufferCount, false)
                    } catch let error as IOError {
                        let lent = loop.lentBufferCount
                        return (error, lent, try await iterator.next() == nil)
                    }
                }
                try await waitUntil { connection.descriptor.io.isAwaitingRead }
                // Linger zero makes close send a reset instead of a FIN.
                try client.setOption(.linger, to: .zero)
                try await onLoop(loop) { try client.close() }
                let (error, lent, finished) = try await reading.value
                #expect(error?.operation == .receive)
                #expect(error?.errno == .connectionReset)
                #expect(error?.address == connection.peerAddress)
                #expect(lent == 0)
                #expect(finished)
                try connection.close()
                try listener.close()
            }
        }

        @Test("an iterator waiting for data holds no buffer, also after a full read then EAGAIN", arguments: BackendKind.availableHere)
        func idleHoldsNoBuffer(backend: BackendKind) async throws {
            try await withStreamPair(backend) { loop, reader, writer in
                // Exactly one buffer's worth: the full read does not prove the stream
                // drained, so the next read runs, meets EAGAIN, and must give its buffer back.
                try await onLoop(loop) { try await writer.write(patternBytes(BufferPool.bufferSize)) }
                let handled = Counter()
                let reading = Task(executorPreference: loop) { () -> [Int] in
                    var counts: [Int] = []
                    for try await chunk in reader.chunks {
                        counts.append(chunk.count)
                        handled.increment()
                    }
                    return counts
                }
                // Parked again after the chunk was handled: its buffer went back first. (Not
                // `isAwaitingRead`: on io_uring the multishot receive keeps that true while
                // the task still holds the chunk.)
                try await waitUntil { handled.value == 1 && reader.descriptor.io.reader.isWaiting }
                #expect(loop.lentBufferCount == 0)
                try await onLoop(loop) { try await writer.write([7]) }
                // On io_uring the write may have gone behind the writer, in a pool buffer of
                // its own until the kernel took it: only the reader's buffers count here.
                try await waitUntil {
                    handled.value == 2 && reader.descriptor.io.reader.isWaiting && !writer.descriptor.io.hasWriteBehind
                }
                #expect(loop.lentBufferCount == 0)
                try writer.shutdown(.writing)
                #expect(try await reading.value == [BufferPool.bufferSize, 1])
            }
        }

        @Test("a waiting next() resumes with CancellationError, .closed or .busy as a read does, holding no buffer", arguments: BackendKind.availableHere)
        func waitingNextErrors(backend: BackendKind) async throws {
            try await withStreamPair(backend) { loop, reader, writer in
                let cancelled = Task(executorPreference: loop) { for try await _ in reader.chunks {} }
                try await waitUntil { reader.descriptor.io.isAwaitingRead }
                cancelled.cancel()
                await #expect(throws: CancellationError.self) { try await cancelled.value }
                #expect(!reader.descriptor.io.isAwaitingRead)

                let closed = Task(executorPreference: loop) { for try await _ in reader.chunks {} }
                try await waitUntil { reader.descriptor.io.isAwaitingRead }
                await #expect(throws: ReactorError.busy) {
                    try await onLoop(loop) { for try await _ in reader.chunks {} }
                }
                try reader.close()
                await #expect(throws: ReactorError.closed) { try await closed.value }
                #expect(loop.lentBufferCount == 0)
            }
        }

        @Test("shutting the loop down: a waiting next() throws .loopShutDown, a held chunk is freed after", arguments: BackendKind.availableHere)
        func loopShutDown(backend: BackendKind) async throws {
            let group = try await EventLoopGroup(loopCount: 1, backend: backend)
            let loop = group.loops[0]
            let (reader, writer) = try UnixStream.pair(on: loop)
            let (idle, idleWriter) = try UnixStream.pair(on: loop)
            try await onLoop(loop) { try await writer.write([1]) }
            let (stopped, announceStop) = AsyncStream<Void>.makeStream()
            let waiting = Task(executorPreference: loop) { for try await _ in idle.chunks {} }
            let holding = Task(executorPreference: loop) { () -> (Bool, Bool, (any Error)?) in
                var iterator = reader.chunks.makeAsyncIterator()
                let chunk = try #require(try await iterator.next())
                // Resumed once the loop's thread has ended: the task goes on on a
                // default-group loop, where the buffer can only be freed.
                for await _ in stopped { break }
                let moved = !loop.isCurrent
                let intact = chunk.isValid && Array(chunk) == [1]
                do {
                    _ = try await iterator.next()
                    return (moved, intact, nil)
                } catch {
                    return (moved, intact, error)
                }
            }
            try await waitUntil { idle.descriptor.io.isAwaitingRead && loop.lentBufferCount == 1 }
            await group.shutdownGracefully()
            announceStop.yield()
            await #expect(throws: ReactorError.loopShutDown) { try await waiting.value }
            let (moved, intact, error) = try await holding.value
            #expect(moved)
            #expect(intact)
            #expect(error as? ReactorError == .loopShutDown)
            #expect(loop.lentBufferCount == 0)
            #expect(loop.buffers.freeCount == 0)
            for stream in [reader, writer, idle, idleWriter] { try stream.close() }
        }

        @Test("a pipe's reader reads its bytes as chunks until the writer closes", arguments: BackendKind.availableHere)
        func pipeChunks(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let pipe = try Pipe(on: loop)
                let sent = patternBytes(200_000)
                let writing = Task(executorPreference: loop) {
                    try await pipe.writer.write(sent)
                    try pipe.writer.close()
                }
                let (received, chunks) = try await onLoop(loop) { () -> ([UInt8], Int) in
                    var received: [UInt8] = []
                    var chunks = 0
                    for try await chunk in pipe.reader.chunks {
                        chunk.withUnsafeBytes { received.append(contentsOf: $0) }
                        chunks += 1
                    }
                    return (received, chunks)
                }
                try await writing.value
                #expect(sameBytes(received, sent))
                #expect(chunks > 1)
                #expect(loop.lentBufferCount == 0)
                try pipe.reader.close()
            }
        }
    }
}
