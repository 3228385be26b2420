import Glibc
import SystemPackage
import Testing

@testable import Reactor

/// The receive queue of `stream`, if its chunks started one. Loop thread only.
private func queue(of stream: UnixStream) -> ReceiveQueue? {
    stream.descriptor.queuedBytes
}

/// Waits until `condition`, evaluated on `loop`'s thread, holds. Gives up after 30 s.
private func waitOnLoop(
    _ loop: EventLoop, sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: @escaping @Sendable () -> Bool
) async throws {
    let limit = ContinuousClock.now.advanced(by: .seconds(30))
    while !(try await onLoop(loop) { condition() }) {
        if ContinuousClock.now > limit {
            Issue.record("the awaited condition never held", sourceLocation: sourceLocation)
            throw CancellationError()
        }
        try await EventLoopGroup.shared.loops[0].clock.sleep(for: .milliseconds(1))
    }
}

/// Waits until the kernel let go of the socket whose peer is `peer`: a write to it finds
/// no reader.
private func waitUntilReleased(peerOf peer: CInt) async throws {
    try await waitUntil {
        var byte: UInt8 = 0
        return send(peer, &byte, 1, CInt(MSG_DONTWAIT | MSG_NOSIGNAL)) < 0 && errno == EPIPE
    }
}

extension ReactorTests {
    @Suite(.enabled(if: uringRuns, "the kernel refuses io_uring here"), .timeLimit(.minutes(1)))
    struct MultishotReceiveTests {
        @Test("a stream of messages arrives in order, all of it, through one receive submission, lent to chunks or copied by plain reads",
              arguments: bufferModes, [false, true])
        func oneArmingForManyMessages(incremental: Bool, plainReads: Bool) async throws {
            try await withURingLoop(incremental: incremental) { loop in
                let (reader, writer) = try UnixStream.pair(on: loop)
                let count = 300
                let received = Counter()
                let reading = Task(executorPreference: loop) { () -> ([UInt8], Int) in
                    var bytes: [UInt8] = []
                    if plainReads {
                        // Smaller than a message: most reads find bytes queued.
                        var buffer = [UInt8](repeating: 0, count: 64)
                        while case let count = try await reader.read(into: &buffer), count > 0 {
                            bytes += buffer[..<count]
                            received.add(count)
                        }
                    } else {
                        for try await chunk in reader.chunks {
                            bytes.append(contentsOf: chunk)
                            received.add(chunk.count)
                        }
                    }
                    return (bytes, queue(of: reader)?.armings ?? 0)
                }
                // One message at a time, each once the last one arrived: the reader waits
                // for every one, so each comes by a completion of the same multishot.
                for index in 0..<count {
                    try await onLoop(loop) { try await writer.write(message(index)) }
                    try await waitUntil { received.value == (index + 1) * 100 }
                }
                try writer.shutdown(.writing)
                let (bytes, armings) = try await reading.value
                #expect(bytes == (0..<count).flatMap { message($0) })
                #expect(armings == 1, "one submission received every message")
                #expect(loop.lentBufferCount == 0)
                try reader.close()
                try writer.close()
            }
        }

        @Test("a cancel racing the bytes of a waiting plain read loses none: the next read has them",
              arguments: bufferModes)
        func cancelledPlainReadLosesNothing(incremental: Bool) async throws {
            try await withURingLoop(incremental: incremental) { loop in
                let (reader, writer) = try UnixStream.pair(on: loop)
                let peer = writer.descriptor.fileDescriptor.rawValue
                try await expectCancelRacingByteLosesNothing(
                    rounds: 100, on: loop, isWaiting: { reader.descriptor.io.reader.isWaiting },
                    write: { byte in withUnsafeBytes(of: byte) { Glibc.send(peer, $0.baseAddress, 1, CInt(MSG_NOSIGNAL)) } },
                    read: {
                        var buffer: [UInt8] = [0]
                        return try await reader.read(into: &buffer) == 1 ? buffer : nil
                    })
                #expect(try await onLoop(loop) { queue(of: reader)?.armings } == 1)
                try reader.close()
                try writer.close()
            }
        }

        @Test("a slow reader's queue stops at the bound, its sender waits, and other connections are served",
              arguments: bufferModes)
        func slowReaderIsBounded(incremental: Bool) async throws {
            try await withURingLoop(incremental: incremental) { loop in
                let ring = try #require(loop.reactor.completions?.providedBuffers)
                let (slow, fast) = try UnixStream.pair(on: loop)
                let (other, otherPeer) = try UnixStream.pair(on: loop)
                let sent = patternBytes(4 << 20)
                let written = Counter()
                let writing = Task(executorPreference: loop) {
                    for start in stride(from: 0, to: sent.count, by: 65_536) {
                        try await fast.write(sent[start..<min(start + 65_536, sent.count)])
                        written.increment()
                    }
                    try fast.shutdown(.writing)
                }
                let (gate, open) = AsyncStream<Void>.makeStream()
                let reading = Task(executorPreference: loop) { () -> [UInt8] in
                    var iterator = slow.chunks.makeAsyncIterator()
                    var bytes = Array(try #require(try await iterator.next()))
                    // Holds the first chunk while the sender goes on.
                    for await _ in gate { break }
                    while let chunk = try await iterator.next() {
                        chunk.withUnsafeBytes { bytes.append(contentsOf: $0) }
                    }
                    return bytes
                }
                // The bound stopped the multishot (the reader may have taken its first chunk
                // from the full queue), and the socket filled: the sender waits.
                try await waitOnLoop(loop) {
                    guard let queue = queue(of: slow) else { return false }
                    return queue.mostRingSlices == ReceiveQueue.bound && !queue.isArmed
                }
                try await waitUntil { fast.descriptor.io.isAwaitingWrite }
                #expect(written.value < sent.count / 65_536)
                let (mostQueued, held) = try await onLoop(loop) { () -> (Int, Int) in
                    let ring = loop.reactor.completions?.providedBuffers
                    return (queue(of: slow)?.mostRingSlices ?? 0, (ring?.count ?? 0) - (ring?.ledger.inRingCount ?? 0))
                }
                #expect(mostQueued == ReceiveQueue.bound)
                #expect(ring.inUse <= ReceiveQueue.bound + 1, "the queue and the chunk the reader holds")
                #expect(held <= ReceiveQueue.bound + 1, "the ring buffers those slices lie in")
                // Another connection on the same loop still gets ring buffers and its bytes.
                let echoed = try await onLoop(loop) { () -> [UInt8] in
                    var bytes: [UInt8] = []
                    var iterator = other.chunks.makeAsyncIterator()
                    for index in 0..<20 {
                        try await otherPeer.write(message(index, size: 10))
                        bytes += Array(try #require(try await iterator.next()))
                    }
                    return bytes
                }
                #expect(echoed == (0..<20).flatMap { message($0, size: 10) })
                open.finish()
                let received = try await reading.value
                try await writing.value
                #expect(sameBytes(received, sent))
                let (mostQueuedAfter, armings) = try await onLoop(loop) {
                    (queue(of: slow)?.mostRingSlices ?? 0, queue(of: slow)?.armings ?? 0)
                }
                #expect(mostQueuedAfter <= ReceiveQueue.bound)
                #expect(armings > 1, "armed again once the reader drained the queue")
                #expect(loop.lentBufferCount == 0)
                for stream in [slow, fast, other, otherPeer] { try stream.close() }
            }
        }

        @Test("whole-buffer mode: a multishot that finds the ring empty ends; the connection reads on and arms again")
        func ringExhaustionRecovers() async throws {
            try await withURingLoop(incremental: false, buffers: 1) { loop in
                let ring = try #require(loop.reactor.completions?.providedBuffers)
                let (reader, writer) = try UnixStream.pair(on: loop)
                let (gate, open) = AsyncStream<Void>.makeStream()
                let reading = Task(executorPreference: loop) { () -> ([[UInt8]], Int) in
                    var iterator = reader.chunks.makeAsyncIterator()
                    var messages = [Array(try #require(try await iterator.next()))]
                    // Holds the ring's one buffer while the next message arrives.
                    for await _ in gate { break }
                    while let chunk = try await iterator.next() { messages.append(Array(chunk)) }
                    return (messages, queue(of: reader)?.armings ?? 0)
                }
                try await onLoop(loop) { try await writer.write(message(1)) }
                try await waitUntil { ring.inUse == 1 }
                try await onLoop(loop) { try await writer.write(message(2)) }
                // ENOBUFS ended the multishot; nothing failed.
                try await waitOnLoop(loop) { queue(of: reader)?.isArmed == false }
                open.finish()
                try await waitUntil { reader.descriptor.io.isAwaitingRead && ring.inUse == 0 }
                try await onLoop(loop) { try await writer.write(message(3)) }
                try writer.shutdown(.writing)
                let (messages, armings) = try await reading.value
                #expect(messages == [message(1), message(2), message(3)])
                #expect(armings == 2, "armed again after the read that followed ENOBUFS")
                #expect(loop.lentBufferCount == 0)
                try reader.close()
                try writer.close()
            }
        }

        @Test("closing a socket with buffers queued gives them back and releases the socket", arguments: bufferModes)
        func closeReturnsQueuedBuffers(incremental: Bool) async throws {
            try await withURingLoop(incremental: incremental) { loop in
                let ring = try #require(loop.reactor.completions?.providedBuffers)
                let (reader, writer) = try UnixStream.pair(on: loop)
                let peer = writer.descriptor.fileDescriptor.rawValue
                let (gate, open) = AsyncStream<Void>.makeStream()
                let reading = Task(executorPreference: loop) { () -> (any Error)? in
                    var iterator = reader.chunks.makeAsyncIterator()
                    _ = try #require(try await iterator.next())
                    for await _ in gate { break }
                    do {
                        _ = try await iterator.next()
                        return nil
                    } catch {
                        return error
                    }
                }
                try await onLoop(loop) { try await writer.write(message(0)) }
                try await waitUntil { ring.inUse == 1 }
                for index in 1...3 {
                    try await onLoop(loop) { try await writer.write(message(index)) }
                    try await waitOnLoop(loop) { queue(of: reader)?.ringSlices == index }
                }
                try await onLoop(loop) { try reader.close() }
                #expect(ring.inUse == 1, "only the chunk the reader holds")
                open.finish()
                #expect(try await reading.value as? ReactorError == .closed)
                #expect(loop.lentBufferCount == 0)
                try await waitUntilReleased(peerOf: peer)
                try writer.close()
            }
        }

        @Test("closing a socket whose plain reads left bytes queued gives the buffers back and releases the socket",
              arguments: bufferModes)
        func closeAfterPlainReads(incremental: Bool) async throws {
            try await withURingLoop(incremental: incremental) { loop in
                let ring = try #require(loop.reactor.completions?.providedBuffers)
                let (reader, writer) = try UnixStream.pair(on: loop)
                let peer = writer.descriptor.fileDescriptor.rawValue
                try await onLoop(loop) { try await writer.write(message(0)) }
                // A read of 10 bytes leaves the other 90 of the message queued, in ring memory.
                let first = try await onLoop(loop) {
                    var buffer = [UInt8](repeating: 0, count: 10)
                    return Array(buffer[..<(try await reader.read(into: &buffer))])
                }
                #expect(first == Array(message(0)[..<10]))
                try await onLoop(loop) { try await writer.write(message(1)) }
                try await waitOnLoop(loop) { queue(of: reader)?.ringSlices == 2 }
                #expect(ring.inUse > 0)
                try await onLoop(loop) { try reader.close() }
                #expect(ring.inUse == 0)
                #expect(loop.lentBufferCount == 0)
                try await waitUntilReleased(peerOf: peer)
                try writer.close()
            }
        }

        @Test("a cancel racing the bytes of a waiting next() loses none: they come with the next iterator",
              arguments: bufferModes)
        func cancelledNextLosesNothing(incremental: Bool) async throws {
            try await withURingLoop(incremental: incremental) { loop in
                let (reader, writer) = try UnixStream.pair(on: loop)
                let peer = writer.descriptor.fileDescriptor.rawValue
                // Each read is the first chunk of a new iterator.
                try await expectCancelRacingByteLosesNothing(
                    rounds: 100, on: loop, isWaiting: { reader.descriptor.io.isAwaitingRead },
                    write: { byte in withUnsafeBytes(of: byte) { Glibc.send(peer, $0.baseAddress, 1, CInt(MSG_NOSIGNAL)) } },
                    read: {
                        var iterator = reader.chunks.makeAsyncIterator()
                        return try await iterator.next().map { Array($0) }
                    })
                #expect(loop.lentBufferCount == 0)
                try reader.close()
                try writer.close()
            }
        }

        @Test("breaking out keeps the bytes received ahead, outside the ring, for the next read", arguments: bufferModes)
        func breakKeepsReadAhead(incremental: Bool) async throws {
            try await withURingLoop(incremental: incremental) { loop in
                let (reader, writer) = try UnixStream.pair(on: loop)
                let sent = patternBytes(100_000)
                try await onLoop(loop) { try await writer.write(sent) }
                let (first, lentAfter) = try await onLoop(loop) { () -> ([UInt8], Int) in
                    var first: [UInt8] = []
                    for try await chunk in reader.chunks {
                        first = Array(chunk)
                        break
                    }
                    return (first, loop.lentBufferCount)
                }
                #expect(lentAfter == 0)
                let rest = try await onLoop(loop) { try await reader.read(exactly: sent.count - first.count) }
                #expect(sameBytes(first + rest, sent))
                try reader.close()
                try writer.close()
            }
        }

        @Test("shutting the loop down with a multishot armed and bytes queued ends it and gives every buffer back",
              arguments: bufferModes)
        func shutdownWithMultishotArmed(incremental: Bool) async throws {
            let group = try await URingBackend.$incrementalProvidedBuffers.withValue(incremental) {
                try await EventLoopGroup(loopCount: 1, backend: .uring)
            }
            let loop = group.loops[0]
            let (idle, idlePeer) = try UnixStream.pair(on: loop)
            let (busy, busyPeer) = try UnixStream.pair(on: loop)
            let waiting = Task(executorPreference: loop) { for try await _ in idle.chunks {} }
            let (gate, open) = AsyncStream<Void>.makeStream()
            let holding = Task(executorPreference: loop) { () -> (any Error)? in
                var iterator = busy.chunks.makeAsyncIterator()
                _ = try #require(try await iterator.next())
                for await _ in gate { break }
                do {
                    while try await iterator.next() != nil {}
                    return nil
                } catch {
                    return error
                }
            }
            try await waitUntil { idle.descriptor.io.isAwaitingRead }
            for index in 0...2 {
                try await onLoop(loop) { try await busyPeer.write(message(index)) }
                try await waitUntil { loop.lentBufferCount == index + 1 }
            }
            await group.shutdownGracefully()
            await #expect(throws: ReactorError.loopShutDown) { try await waiting.value }
            open.finish()
            #expect(try await holding.value as? ReactorError == .loopShutDown)
            #expect(loop.lentBufferCount == 0)
            for stream in [idle, idlePeer, busy, busyPeer] { try stream.close() }
        }
    }
}
