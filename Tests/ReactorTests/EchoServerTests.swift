import Glibc
import Reactor
import ReactorServers
import Testing

extension ReactorTests {
    // Two minutes, beyond `waitUntil`'s own one: a condition that never holds then fails
    // where it is awaited, instead of as the suite's time limit.
    @Suite(.timeLimit(.minutes(2))) struct EchoServerTests {
        @Test("echoes every byte in order; after the client half-closes, finishes echoing, then closes", arguments: BackendKind.availableHere)
        func halfClose(backend: BackendKind) async throws {
            try await withServer(backend: backend, handler: { try await EchoServer.handle($0) }) { address, loop in
                let client = try await TCPStream.connect(to: address, on: loop)
                // More than the socket buffers hold, so that echoing overlaps sending.
                let sent = patternBytes(4 << 20)
                let writer = Task(executorPreference: loop) {
                    for start in stride(from: 0, to: sent.count, by: 100_000) {
                        try await client.write(sent[start..<min(start + 100_000, sent.count)])
                    }
                    try client.shutdown(.writing)
                }
                let received = try await onLoop(loop) { try await readToEnd(client) }
                try await writer.value
                #expect(received.count == sent.count)
                #expect(sameBytes(received, sent))
                try client.close()
            }
        }

        @Test("a client that sends without ever reading stalls only itself", arguments: BackendKind.availableHere)
        func stuckClient(backend: BackendKind) async throws {
            let accepted = Recorder<TCPStream>()
            let handler: @Sendable (TCPStream) async throws -> Void = { connection in
                accepted.append(connection)
                try await EchoServer.handle(connection)
            }
            try await withServer(backend: backend, handler: handler) { address, loop in
                // Its receive buffer keeps the size it connected with. Shrunk below what it
                // already holds, the socket drops every segment that arrives, with the
                // window updates they carry, and both ends back off for a minute or more.
                let stuck = try await TCPStream.connect(to: address, on: loop)
                let flood = Task(executorPreference: loop) {
                    let chunk = [UInt8](repeating: 0x5A, count: 64 * 1024)
                    // Bounded: 256 MiB is far more than the buffers on both sides hold,
                    // so this never ends by itself.
                    for _ in 0..<4_096 { try await stuck.write(chunk) }
                }
                // The server's end of the stuck connection: once it has input waiting
                // and no room to send, its handler waits to write, and reads nothing.
                try await waitUntil { accepted.elements.count == 1 }
                let serverEnd = accepted.elements[0].descriptor.fileDescriptor.rawValue
                try await waitUntil { isStalled(serverEnd) }

                let other = try await TCPStream.connect(to: address, on: loop)
                let echoed = try await onLoop(loop) { () -> [[UInt8]] in
                    var replies: [[UInt8]] = []
                    for round in 0..<100 {
                        let message = Array("round \(round)".utf8)
                        try await other.write(message)
                        replies.append(try await other.read(exactly: message.count))
                    }
                    return replies
                }
                #expect(echoed == (0..<100).map { Array("round \($0)".utf8) })
                #expect(isStalled(serverEnd), "the stuck connection stayed stuck meanwhile")
                try other.close()

                flood.cancel()
                _ = await flood.result
                // Closing with unread data resets the connection, which ends its handler.
                // Closed on its loop: the poll backend's loop, asleep in poll(2) with the
                // descriptor still armed, would keep the socket alive until it next woke.
                try await onLoop(loop) { try stuck.close() }
            }
        }
    }
}

/// Whether the socket `fd` has input waiting and no room to send: an echo handler on it
/// waits to write, and reads nothing meanwhile.
private func isStalled(_ fd: CInt) -> Bool {
    var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
    guard poll(&entry, 1, 0) == 0 else { return false }
    var pending: CInt = 0
    return ioctl(fd, UInt(FIONREAD), &pending) == 0 && pending > 0
}
