import CReactor
import Glibc
import SystemPackage
import Testing

@testable import Reactor

/// A listener on an ephemeral loopback port.
private func loopbackListener(on loop: EventLoop, backlog: Int = 1_024) throws -> TCPListener {
    try TCPListener.bind(to: .ipv4(127, 0, 0, 1, port: 0), backlog: backlog, on: loop)
}

/// An FNV-1a checksum of a byte stream, fed in pieces.
private struct Checksum {
    var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ bytes: some Sequence<UInt8>) {
        for byte in bytes { value = (value ^ UInt64(byte)) &* 0x100_0000_01b3 }
    }
}

/// Echoes every byte it reads, then closes when the peer half-closes.
private func echo(_ connection: TCPStream) async throws {
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    while case let count = try await connection.read(into: &buffer), count > 0 {
        try await connection.write(buffer[..<count])
    }
}

extension ReactorTests {
    @Suite struct TCPTests {
        // One backend at a time: three 16 MiB echoes at once keep both cores busy for
        // seconds, and starve the tests that run beside them.
        @Test("16 MiB echoed while reading concurrently arrive intact", .serialized, arguments: BackendKind.availableHere)
        func bulkEcho(backend: BackendKind) async throws {
            try await withEventLoopGroup(loopCount: 2, backend: backend) { group in
                let listener = try loopbackListener(on: group.loops[0])
                let server = Task(executorPreference: group.loops[0]) {
                    let connection = try await listener.accept()
                    try await echo(connection)
                    try connection.close()
                }
                let client = try await TCPStream.connect(to: try listener.localAddress, on: group.loops[1])
                let total = 16 << 20
                let writer = Task(executorPreference: group.loops[1]) { () -> UInt64 in
                    var checksum = Checksum()
                    var chunk = [UInt8](repeating: 0, count: 100_000)
                    var sent = 0
                    while sent < total {
                        let count = min(chunk.count, total - sent)
                        for index in 0..<count { chunk[index] = UInt8(truncatingIfNeeded: (sent + index) &* 7 &+ (sent + index) >> 11) }
                        try await client.write(chunk[..<count])
                        checksum.add(chunk[..<count])
                        sent += count
                    }
                    try client.shutdown(.writing)
                    return checksum.value
                }
                let received = try await onLoop(group.loops[1]) { () -> (Int, UInt64) in
                    var checksum = Checksum()
                    var count = 0
                    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
                    while case let read = try await client.read(into: &buffer), read > 0 {
                        checksum.add(buffer[..<read])
                        count += read
                    }
                    return (count, checksum.value)
                }
                #expect(received.0 == total)
                #expect(received.1 == (try await writer.value))
                try await server.value
                try client.close()
                try listener.close()
            }
        }

        @Test("1,000 concurrent connections against a two-loop group are each served", arguments: BackendKind.availableHere)
        func thousandConnections(backend: BackendKind) async throws {
            try await withEventLoopGroup(loopCount: 2, backend: backend) { group in
                let listener = try loopbackListener(on: group.loops[0])
                let address = try listener.localAddress
                let server = Task { try await listener.serve(on: group) { try await echo($0) } }
                try await withThrowingTaskGroup(of: Bool.self) { clients in
                    for index in 0..<1_000 {
                        let loop = group.loops[index % 2]
                        clients.addTask(executorPreference: loop) {
                            let stream = try await TCPStream.connect(to: address, on: loop)
                            let message = Array("connection \(index)".utf8)
                            try await stream.write(message)
                            try stream.shutdown(.writing)
                            var echoed: [UInt8] = []
                            var buffer = [UInt8](repeating: 0, count: 256)
                            while case let count = try await stream.read(into: &buffer), count > 0 {
                                echoed += buffer[..<count]
                            }
                            try stream.close()
                            return echoed == message
                        }
                    }
                    var verified = 0
                    for try await ok in clients where ok { verified += 1 }
                    #expect(verified == 1_000)
                }
                try listener.close()
                try await server.value
            }
        }

        @Test("half-close in both directions: each side reads end-of-stream after the data", arguments: BackendKind.availableHere)
        func halfClose(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let listener = try loopbackListener(on: loop)
                let server = Task(executorPreference: loop) { () -> [UInt8] in
                    let connection = try await listener.accept()
                    var received: [UInt8] = []
                    var buffer = [UInt8](repeating: 0, count: 64)
                    while case let count = try await connection.read(into: &buffer), count > 0 { received += buffer[..<count] }
                    // The client's side is closed; ours still writes.
                    try await connection.write(Array("reply".utf8))
                    try connection.shutdown(.writing)
                    try connection.close()
                    return received
                }
                let reply = try await onLoop(loop) { () -> [UInt8] in
                    let client = try await TCPStream.connect(to: try listener.localAddress)
                    try await client.write(Array("request".utf8))
                    try client.shutdown(.writing)
                    var reply: [UInt8] = []
                    var buffer = [UInt8](repeating: 0, count: 64)
                    while case let count = try await client.read(into: &buffer), count > 0 { reply += buffer[..<count] }
                    #expect(try await client.read(into: &buffer) == 0, "a read after end-of-stream returns 0 again")
                    try client.close()
                    return reply
                }
                #expect(try await server.value == Array("request".utf8))
                #expect(reply == Array("reply".utf8))
                try listener.close()
            }
        }

        @Test("a peer's reset mid-transfer gives a typed error; the listener keeps serving", arguments: BackendKind.availableHere)
        func peerReset(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let listener = try loopbackListener(on: loop)
                let address = try listener.localAddress
                let failure = Task(executorPreference: loop) { () -> IOError? in
                    let connection = try await listener.accept()
                    defer { try? connection.close() }
                    do {
                        let chunk = [UInt8](repeating: 1, count: 1 << 20)
                        while true { try await connection.write(chunk) }
                    } catch let error as IOError {
                        return error
                    }
                }
                try await onLoop(loop) {
                    let client = try await TCPStream.connect(to: address)
                    _ = try await client.read(exactly: 1_000)
                    // Linger zero makes close send a reset instead of a FIN.
                    try client.setOption(.linger, to: .zero)
                    try client.close()
                }
                let error = try #require(try await failure.value)
                #expect(error.operation == .send)
                #expect(error.errno == .connectionReset || error.errno == .brokenPipe)
                #expect(error.address != nil)
                // The listener still serves.
                let server = Task(executorPreference: loop) { try await echo(try await listener.accept()) }
                let echoed = try await onLoop(loop) { () -> [UInt8] in
                    let client = try await TCPStream.connect(to: address)
                    try await client.write([4, 2])
                    let bytes = try await client.read(exactly: 2)
                    try client.close()
                    return bytes
                }
                #expect(echoed == [4, 2])
                try await server.value
                try listener.close()
            }
        }

        @Test("connecting to a port nobody listens on is refused, with the address in the error", arguments: BackendKind.availableHere)
        func connectionRefused(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                try await withRefusingPort { address in
                    let error = await #expect(throws: IOError.self) {
                        try await onLoop(loop) { _ = try await TCPStream.connect(to: address) }
                    }
                    #expect(error?.errno == .connectionRefused)
                    #expect(error?.operation == .connect)
                    #expect(error?.address == address)
                }
            }
        }

        @Test("an unresolvable name gives a typed resolution error")
        func unresolvable() async throws {
            let error = await #expect(throws: ResolutionError.self) {
                _ = try await TCPStream.connect(host: "no-such-host.invalid", port: 80)
            }
            #expect(error?.isNotFound == true)
        }

        @Test("a connect deadline is honoured when the peer never answers", arguments: BackendKind.availableHere)
        func connectTimeout(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                // A listener that never accepts: once its queue is full, the kernel drops
                // further handshakes, and a connect waits until its deadline.
                let listener = try loopbackListener(on: loop, backlog: 0)
                let address = try listener.localAddress
                var held: [TCPStream] = []
                var timedOut: IOError?
                for _ in 0..<32 where timedOut == nil {
                    do {
                        held.append(try await onLoop(loop) { try await TCPStream.connect(to: address, timeout: .milliseconds(200)) })
                    } catch let error as IOError {
                        timedOut = error
                    }
                }
                let error = try #require(timedOut)
                #expect(error.errno == .timedOut)
                #expect(error.operation == .connect)
                #expect(error.address == address)
                for stream in held { try stream.close() }
                try listener.close()
            }
        }

        @Test("connect by name races the addresses and reaches the one that listens", arguments: BackendKind.availableHere)
        func connectByName(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let listener = try loopbackListener(on: loop)
                let port = try listener.localAddress.port!
                let server = Task(executorPreference: loop) { try await echo(try await listener.accept()) }
                let echoed = try await onLoop(loop) { () -> [UInt8] in
                    // "localhost" may also resolve to ::1, where nothing listens on this port.
                    let client = try await TCPStream.connect(host: "localhost", port: port, timeout: .seconds(10))
                    #expect(client.peerAddress.isLoopback)
                    try await client.write([7])
                    let bytes = try await client.read(exactly: 1)
                    try client.close()
                    return bytes
                }
                #expect(echoed == [7])
                try await server.value
                try listener.close()
            }
        }

        @Test("gathered writes, exact reads, addresses and options", arguments: BackendKind.availableHere)
        func streamFeatures(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let listener = try loopbackListener(on: loop)
                let server = Task(executorPreference: loop) { () -> TCPStream in try await listener.accept() }
                let client = try await onLoop(loop) { try await TCPStream.connect(to: try listener.localAddress) }
                let accepted = try await server.value
                #expect(try client.localAddress == accepted.peerAddress)
                #expect(try accepted.localAddress == client.peerAddress)

                try client.setOption(.noDelay, to: true)
                #expect(try client.option(.noDelay))
                try client.setOption(.keepAlive, to: true)
                #expect(try client.option(.keepAlive))
                try client.setOption(.linger, to: .seconds(3))
                #expect(try client.option(.linger) == .seconds(3))
                try client.setOption(.sendBufferSize, to: 64 * 1024)
                #expect(try client.option(.sendBufferSize) >= 64 * 1024)

                let parts: [[UInt8]] = [[1, 2, 3], [], [4], Array(repeating: 5, count: 100_000)]
                let expected = parts.flatMap { $0 }
                let writer = Task(executorPreference: loop) {
                    try await withUnsafeBuffers(parts) { try await client.write(gathering: $0) }
                }
                let received = try await onLoop(loop) { try await accepted.read(exactly: expected.count) }
                try await writer.value
                #expect(received == expected)

                try client.close()
                await #expect(throws: ReactorError.endOfStream) {
                    try await onLoop(loop) { _ = try await accepted.read(exactly: 1) }
                }
                try accepted.close()
                try listener.close()
            }
        }

        @Test("serve caps concurrent handlers, and closing the listener stops it gracefully", arguments: BackendKind.availableHere)
        func serveLimitAndStop(backend: BackendKind) async throws {
            try await withEventLoopGroup(loopCount: 2, backend: backend) { group in
                let listener = try loopbackListener(on: group.loops[0])
                let address = try listener.localAddress
                let started = Counter()
                // +1 when a handler starts, -1 when it ends, in the order they happen.
                let changes = Recorder<Int>()
                let server = Task {
                    try await listener.serve(on: group, maxConnections: 2) { connection in
                        started.increment()
                        changes.append(1)
                        defer { changes.append(-1) }
                        // Hold the connection until the client writes.
                        _ = try await connection.read(exactly: 1)
                        try await connection.write([9])
                    }
                }
                var clients: [TCPStream] = []
                for _ in 0..<4 { clients.append(try await TCPStream.connect(to: address)) }
                try await waitUntil { started.value == 2 }
                // Two wait in the backlog while two are served.
                for client in clients { try await client.write([1]) }
                for client in clients { #expect(try await client.read(exactly: 1) == [9]) }
                #expect(started.value == 4)
                let running = changes.elements.reduce(into: [0]) { $0.append($0.last! + $1) }
                #expect(running.max() == 2)
                try listener.close()
                try await server.value
                for client in clients { try client.close() }
            }
        }
    }
}

/// Runs `body` with unsafe views of `arrays`, valid for the whole (async) call.
private func withUnsafeBuffers<Result>(
    _ arrays: [[UInt8]], _ body: ([UnsafeRawBufferPointer]) async throws -> Result
) async rethrows -> Result {
    let copies = arrays.map { array -> UnsafeMutableRawBufferPointer in
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: array.count, alignment: 1)
        array.withUnsafeBytes { copy.copyMemory(from: $0) }
        return copy
    }
    defer { copies.forEach { $0.deallocate() } }
    return try await body(copies.map { UnsafeRawBufferPointer($0) })
}

extension ReactorTests.TCPTests {
    @Test("accept backs off on EMFILE without spinning, and recovers when descriptors free up", arguments: BackendKind.availableHere)
    func acceptBackOff(backend: BackendKind) async throws {
        try await withLoop(backend) { loop in
            let listener = try TCPListener.bind(to: .ipv4(127, 0, 0, 1, port: 0), on: loop)
            let client = try await onLoop(loop) { try await TCPStream.connect(to: try listener.localAddress) }
            let attempts = Counter()
            let (accepted, elapsed) = try await onLoop(loop) { () -> (AsyncFD, Duration) in
                let start = ContinuousClock.now
                // The process is out of descriptors for the first five attempts.
                let (accepted, _) = try await listener.descriptor.acceptConnection(on: nil) { fd, address, length in
                    attempts.increment()
                    if attempts.value <= 5 {
                        errno = EMFILE
                        return -1
                    }
                    return creactor_accept(fd, address, length)
                }
                return (accepted, start.duration(to: .now))
            }
            #expect(attempts.value == 6, "one attempt per back-off step, no spinning")
            #expect(elapsed >= .milliseconds(10 + 20 + 40 + 80 + 160), "waits 10 ms, doubling")
            try accepted.close()
            try client.close()
            try listener.close()
        }
    }
}
