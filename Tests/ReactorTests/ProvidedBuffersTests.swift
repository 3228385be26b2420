import Glibc
import Testing

@testable import Reactor

/// Loop thread only: the provided-buffer ring of `loop`, an io_uring loop.
private func ring(of loop: EventLoop) -> ProvidedBuffers {
    guard let completions = loop.reactor.completions else { preconditionFailure("not an io_uring loop") }
    return completions.providedBuffers
}

/// How many slices of buffer `id` of `loop`'s ring are lent, and whether the ring holds it.
private func account(of id: UInt16, on loop: EventLoop) async throws -> (slices: Int, inRing: Bool) {
    try await onLoop(loop) { (ring(of: loop).ledger.slices(of: id), ring(of: loop).ledger.isInRing(id)) }
}

/// How many buffers `loop`'s ring holds by the ledger's count, after checking that the
/// kernel counts as many (where it can tell, Linux 6.8): a buffer handed back while the
/// kernel still held it, or never handed back, shows here.
private func buffersInRing(of loop: EventLoop, sourceLocation: SourceLocation = #_sourceLocation) async throws -> Int {
    let (kernel, ledger) = try await onLoop(loop) {
        (ring(of: loop).kernelRingCount, ring(of: loop).ledger.inRingCount)
    }
    if let kernel { #expect(kernel == ledger, "the kernel's count of buffers in the ring", sourceLocation: sourceLocation) }
    return ledger
}

/// Reads `stream`'s chunks to its end on `loop`, counting the bytes into `received`, and
/// returns them with the number of multishot receives it took.
private func readToEnd(_ stream: UnixStream, on loop: EventLoop, counting received: Counter) -> Task<([UInt8], Int), any Error> {
    Task(executorPreference: loop) {
        var bytes: [UInt8] = []
        for try await chunk in stream.chunks {
            bytes.append(contentsOf: chunk)
            received.add(chunk.count)
        }
        return (bytes, stream.descriptor.queuedBytes?.armings ?? 0)
    }
}

/// Has `peer` send `bytes` to `stream`, whose first chunk a task on `loop` takes and holds
/// until `gate` finishes; returns that task once it took the chunk. The task returns the
/// chunk's bytes, read only when it lets go of them.
private func holdFirstChunk(
    of stream: UnixStream, sentBy peer: UnixStream, _ bytes: [UInt8], on loop: EventLoop,
    until gate: AsyncStream<Void>
) async throws -> Task<[UInt8], any Error> {
    let taken = Counter()
    let holding = Task(executorPreference: loop) {
        var iterator = stream.chunks.makeAsyncIterator()
        let chunk = try #require(try await iterator.next())
        taken.increment()
        for await _ in gate { break }
        return Array(chunk)
    }
    try await onLoop(loop) { try await peer.write(bytes) }
    try await waitUntil { taken.value == 1 }
    return holding
}

extension ReactorTests {
    @Suite(.enabled(if: uringRuns, "the kernel refuses io_uring here"), .timeLimit(.minutes(1)))
    struct ProvidedBuffersTests {
        // The kernel's copy of received bytes runs at about half speed into a destination
        // that is not cache-line aligned.
        @Test("every provided buffer starts on a cache line")
        func cacheLineAligned() async throws {
            try await withURingLoop(incremental: false, buffers: 8) { loop in
                let offsets = try await onLoop(loop) {
                    (0..<UInt16(8)).map { Int(bitPattern: ring(of: loop).pointer($0)) % 64 }
                }
                #expect(offsets == Array(repeating: 0, count: 8))
            }
        }

        @Test("small messages of many connections all arrive in order through a ring of two buffers, which incrementally never runs dry",
              arguments: bufferModes)
        func smallMessagesShareTinyRing(incremental: Bool) async throws {
            try await withURingLoop(incremental: incremental, buffers: 2) { loop in
                let pairs = try (0..<16).map { _ in try UnixStream.pair(on: loop) }
                let (rounds, size) = (200, 64)
                let received = Counter()
                let readers = pairs.map { readToEnd($0.0, on: loop, counting: received) }
                // One message per connection per round, the next round once all arrived: every
                // reader holds its last chunk, and so a slice of ring memory, meanwhile.
                for round in 0..<rounds {
                    for (index, pair) in pairs.enumerated() {
                        var bytes = message(round * pairs.count + index, size: size)
                        #expect(send(pair.1.descriptor.fileDescriptor.rawValue, &bytes, size, CInt(MSG_NOSIGNAL)) == size)
                    }
                    try await waitUntil { received.value == (round + 1) * pairs.count * size }
                }
                for pair in pairs { try pair.1.shutdown(.writing) }
                var armings: [Int] = []
                for (index, reader) in readers.enumerated() {
                    let (bytes, armed) = try await reader.value
                    #expect(bytes == (0..<rounds).flatMap { message($0 * pairs.count + index, size: size) })
                    armings.append(armed)
                }
                if incremental {
                    #expect(armings.allSatisfy { $0 == 1 }, "no receive ended on an empty ring")
                } else {
                    #expect(armings.contains { $0 > 1 }, "16 readers each hold a whole buffer of 2")
                }
                #expect(loop.lentBufferCount == 0)
                #expect(try await buffersInRing(of: loop) == 2)
                for pair in pairs {
                    try pair.0.close()
                    try pair.1.close()
                }
            }
        }

        @Test("a buffer whose slices two connections hold goes back to the ring once both are handed back, with their bytes intact",
              .enabled(if: incrementalBuffersRun, "the kernel consumes provided buffers whole"))
        func sharedBufferWaitsForEverySlice() async throws {
            try await withURingLoop(incremental: true, buffers: 2) { loop in
                let (first, firstPeer) = try UnixStream.pair(on: loop)
                let (second, secondPeer) = try UnixStream.pair(on: loop)
                let (filler, fillerPeer) = try UnixStream.pair(on: loop)
                let (firstGate, openFirst) = AsyncStream<Void>.makeStream()
                let (secondGate, openSecond) = AsyncStream<Void>.makeStream()
                let holdingFirst = try await holdFirstChunk(of: first, sentBy: firstPeer, message(1), on: loop, until: firstGate)
                let holdingSecond = try await holdFirstChunk(of: second, sentBy: secondPeer, message(2), on: loop, until: secondGate)
                #expect(try await account(of: 0, on: loop) == (2, true), "two slices of the buffer at the ring's head")
                #expect(try await buffersInRing(of: loop) == 2)
                // A third connection's bytes fill the rest of buffer 0, which leaves the ring.
                let rest = patternBytes(ProvidedBuffers.bufferSize - 200)
                let filling = readToEnd(filler, on: loop, counting: Counter())
                try await onLoop(loop) { try await fillerPeer.write(rest) }
                try fillerPeer.shutdown(.writing)
                #expect(sameBytes(try await filling.value.0, rest))
                #expect(try await account(of: 0, on: loop) == (2, false))
                #expect(try await buffersInRing(of: loop) == 1)
                openFirst.finish()
                #expect(try await holdingFirst.value == message(1))
                #expect(try await account(of: 0, on: loop) == (1, false), "the other slice keeps it")
                openSecond.finish()
                #expect(try await holdingSecond.value == message(2))
                #expect(try await account(of: 0, on: loop) == (0, true))
                #expect(try await buffersInRing(of: loop) == 2)
                #expect(loop.lentBufferCount == 0)
                for stream in [first, firstPeer, second, secondPeer, filler, fillerPeer] { try stream.close() }
            }
        }

        @Test("incrementally, a ring whose buffer a reader still holds runs dry; reads go on through the pool, and the ring recovers",
              .enabled(if: incrementalBuffersRun, "the kernel consumes provided buffers whole"))
        func incrementalExhaustionRecovers() async throws {
            try await withURingLoop(incremental: true, buffers: 1) { loop in
                let (holder, holderPeer) = try UnixStream.pair(on: loop)
                let (reader, writer) = try UnixStream.pair(on: loop)
                let received = Counter()
                let (gate, open) = AsyncStream<Void>.makeStream()
                let holding = try await holdFirstChunk(of: holder, sentBy: holderPeer, message(1), on: loop, until: gate)
                let reading = readToEnd(reader, on: loop, counting: received)
                let fill = patternBytes(ProvidedBuffers.bufferSize - 100)
                try await onLoop(loop) { try await writer.write(fill) }
                try await waitUntil { received.value == fill.count }
                #expect(try await buffersInRing(of: loop) == 0, "the one buffer is full and held")
                let dry = message(2, size: 1_000)
                try await onLoop(loop) { try await writer.write(dry) }
                try await waitUntil { received.value == fill.count + dry.count }
                open.finish()
                #expect(try await holding.value == message(1))
                #expect(try await buffersInRing(of: loop) == 1)
                let after = message(3, size: 500)
                try await onLoop(loop) { try await writer.write(after) }
                try writer.shutdown(.writing)
                let (bytes, armings) = try await reading.value
                #expect(sameBytes(bytes, fill + dry + after))
                #expect(armings >= 2, "the empty ring ended a multishot, and the next was armed")
                #expect(loop.lentBufferCount == 0)
                for stream in [holder, holderPeer, reader, writer] { try stream.close() }
            }
        }

        @Test("a pipe's end-of-stream, whose completion names a buffer, leaves the ring whole", arguments: bufferModes)
        func pipeEndOfStream(incremental: Bool) async throws {
            try await withURingLoop(incremental: incremental, buffers: 2) { loop in
                for round in 0..<3 {
                    let pipe = try Pipe(on: loop)
                    let chunks = try await onLoop(loop) { () -> [[UInt8]] in
                        try await pipe.writer.write(message(round))
                        try pipe.writer.close()
                        var chunks: [[UInt8]] = []
                        for try await chunk in pipe.reader.chunks { chunks.append(Array(chunk)) }
                        return chunks
                    }
                    #expect(chunks == [message(round)])
                    #expect(loop.lentBufferCount == 0)
                    #expect(try await buffersInRing(of: loop) == 2)
                    try pipe.reader.close()
                }
            }
        }
    }
}
