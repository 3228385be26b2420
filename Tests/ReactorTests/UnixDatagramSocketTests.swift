import Glibc
import SystemPackage
import Testing

@testable import Reactor

/// Sends 2,000 numbered datagrams in batches until the sender waits on a full queue, then
/// receives them all and checks that they arrived in order.
private func expectBackpressure(
    from sender: UnixDatagramSocket, to receiver: UnixDatagramSocket, destination: SocketAddress?, on loop: EventLoop
) async throws {
    let count = 2_000
    let sending = Task(executorPreference: loop) {
        var batch = DatagramBatch(capacity: 16, datagramSize: 512)
        for index in 0..<count {
            batch.append(withUnsafeBytes(of: UInt32(index)) { Array($0) } + [UInt8](repeating: 0, count: 508), to: destination)
            if batch.count == batch.capacity {
                try await sender.send(batch: batch)
                batch.removeAll()
            }
        }
        try await sender.send(batch: batch)
    }
    try await waitUntil { sender.descriptor.io.isAwaitingWrite }
    let values = try await onLoop(loop) { () -> [UInt32] in
        var values: [UInt32] = []
        var batch = DatagramBatch(capacity: 64, datagramSize: 512)
        while values.count < count {
            try await receiver.receive(batch: &batch)
            for slot in 0..<batch.count {
                values.append(batch.withBytes(at: slot) { $0.loadUnaligned(as: UInt32.self) })
            }
        }
        return values
    }
    try await sending.value
    #expect(values == (0..<UInt32(count)).map { $0 })
}

private func randomAbstractName() -> String {
    "reactor-test-\(UInt64.random(in: 0...UInt64.max))"
}

extension ReactorTests {
    @Suite struct UnixDatagramSocketTests {
        @Test("datagrams by path: an unbound sender is unnamed, a bound one can be answered", arguments: BackendKind.availableHere)
        func byPath(backend: BackendKind) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try await withLoop(backend) { loop in
                let serverAddress = try directory.address("server.sock")
                let clientAddress = try directory.address("client.sock")
                let server = try UnixDatagramSocket.bind(to: serverAddress, on: loop)
                let anonymous = try UnixDatagramSocket.unbound(on: loop)
                let client = try UnixDatagramSocket.bind(to: clientAddress, on: loop)
                #expect(try server.localAddress == serverAddress)
                try await onLoop(loop) {
                    try await anonymous.send([1], to: serverAddress)
                    let first = try await server.receive(upTo: 8)
                    #expect(first == Datagram(bytes: [1], sender: try .unix(path: ""), isTruncated: false))

                    try await client.send([2, 3], to: serverAddress)
                    let second = try await server.receive(upTo: 8)
                    #expect(second == Datagram(bytes: [2, 3], sender: clientAddress, isTruncated: false))
                    try await server.send([4], to: second.sender)
                    #expect(try await client.receive(upTo: 8) == Datagram(bytes: [4], sender: serverAddress, isTruncated: false))
                }
                try server.close()
                try anonymous.close()
                try client.close()
            }
        }

        @Test("a stale socket file blocks bind with EADDRINUSE unless removingStaleFile", arguments: BackendKind.availableHere)
        func staleFile(backend: BackendKind) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try await withLoop(backend) { loop in
                let address = try directory.address("stale.sock")
                try UnixDatagramSocket.bind(to: address, on: loop).close()
                #expect(directory.exists("stale.sock"))
                let error = #expect(throws: IOError.self) { try UnixDatagramSocket.bind(to: address, on: loop) }
                #expect(error?.errno == .addressInUse)
                #expect(error?.operation == .bind)
                #expect(error?.address == address)

                let socket = try UnixDatagramSocket.bind(to: address, removingStaleFile: true, on: loop)
                #expect(try socket.localAddress == address)
                let sender = try UnixDatagramSocket.unbound(on: loop)
                try await onLoop(loop) { try await sender.send([5], to: address) }
                #expect(try await onLoop(loop) { try await socket.receive(upTo: 8) }.bytes == [5])
                try socket.close()
                try sender.close()
            }
        }

        @Test("removingStaleFile never takes over a live socket's path, nor removes a file that is not a socket",
              arguments: BackendKind.availableHere)
        func staleFileSparesLiveSockets(backend: BackendKind) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try await withLoop(backend) { loop in
                let address = try directory.address("live.sock")
                let live = try UnixDatagramSocket.bind(to: address, on: loop)
                let taken = #expect(throws: IOError.self) {
                    try UnixDatagramSocket.bind(to: address, removingStaleFile: true, on: loop)
                }
                #expect(taken?.errno == .addressInUse)
                let sender = try UnixDatagramSocket.unbound(on: loop)
                try await onLoop(loop) { try await sender.send([6], to: address) }
                #expect(try await onLoop(loop) { try await live.receive(upTo: 8) }.bytes == [6])

                let plainPath = "\(directory.path)/plain"
                let file = open(plainPath, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
                #expect(file >= 0)
                close(file)
                let plain = #expect(throws: IOError.self) {
                    try UnixDatagramSocket.bind(to: .unix(path: plainPath), removingStaleFile: true, on: loop)
                }
                #expect(plain?.errno == .addressInUse)
                #expect(directory.exists("plain"))
                try live.close()
                try sender.close()
            }
        }

        @Test("binding an IP address fails with EINVAL; binding the unnamed address picks an abstract name",
              arguments: BackendKind.availableHere)
        func bindEdgeCases(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let ip = SocketAddress.ipv4(127, 0, 0, 1, port: 0)
                let error = #expect(throws: IOError.self) { try UnixDatagramSocket.bind(to: ip, on: loop) }
                #expect(error?.errno == .invalidArgument)
                #expect(error?.address == ip)

                let autobound = try UnixDatagramSocket.bind(to: .unix(path: ""), on: loop)
                let name = try autobound.localAddress
                #expect(name.family == .unix)
                #expect(name.path == nil)
                #expect(name != (try .unix(path: "")))
                try autobound.close()
            }
        }

        @Test("datagrams by abstract name", arguments: BackendKind.availableHere)
        func abstractName(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let address = try SocketAddress.unixAbstract(name: randomAbstractName())
                let server = try UnixDatagramSocket.bind(to: address, on: loop)
                #expect(try server.localAddress == address)
                let client = try UnixDatagramSocket.bind(to: .unixAbstract(name: randomAbstractName()), on: loop)
                let clientAddress = try client.localAddress
                try await onLoop(loop) {
                    try await client.send([1, 2, 3, 4], to: address)
                    let datagram = try await server.receive(upTo: 2)
                    #expect(datagram == Datagram(bytes: [1, 2], sender: clientAddress, isTruncated: true))
                }
                try server.close()
                try client.close()
            }
        }

        @Test("a socket pair exchanges datagrams both ways and reports truncation", arguments: BackendKind.availableHere)
        func pair(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let (a, b) = try UnixDatagramSocket.pair(on: loop)
                #expect(a.eventLoop === loop)
                #expect(b.eventLoop === loop)
                try await onLoop(loop) {
                    try await a.send([1, 2, 3])
                    #expect(try await b.receive(upTo: 8) == Datagram(bytes: [1, 2, 3], sender: try .unix(path: ""), isTruncated: false))
                    try await b.send([UInt8](repeating: 9, count: 100))
                    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 10, alignment: 1)
                    defer { buffer.deallocate() }
                    let cut = try await a.receive(into: buffer)
                    #expect(cut.byteCount == 10)
                    #expect(cut.isTruncated)
                }
                try a.close()
                try b.close()
            }
        }

        @Test("a connected sender waits while its peer's queue is full, and every datagram arrives in order",
              arguments: BackendKind.availableHere)
        func backpressure(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let (a, b) = try UnixDatagramSocket.pair(on: loop)
                try await expectBackpressure(from: a, to: b, destination: nil, on: loop)
                try a.close()
                try b.close()
            }
        }

        @Test("an unconnected sender waits while the queue at a path is full", arguments: BackendKind.availableHere)
        func backpressureByPath(backend: BackendKind) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try await withLoop(backend) { loop in
                let address = try directory.address("busy.sock")
                let receiver = try UnixDatagramSocket.bind(to: address, on: loop)
                let sender = try UnixDatagramSocket.unbound(on: loop)
                try await expectBackpressure(from: sender, to: receiver, destination: address, on: loop)
                try receiver.close()
                try sender.close()
            }
        }

        @Test("an unconnected sender of single datagrams waits while the queue at a path is full",
              arguments: BackendKind.availableHere)
        func singleSendBackpressureByPath(backend: BackendKind) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try await withLoop(backend) { loop in
                let address = try directory.address("busy.sock")
                let receiver = try UnixDatagramSocket.bind(to: address, on: loop)
                let sender = try UnixDatagramSocket.unbound(on: loop)
                let count = 200
                let sending = Task(executorPreference: loop) {
                    for index in 0..<count { try await sender.send([UInt8(index)], to: address) }
                }
                try await waitUntil { sender.descriptor.io.isAwaitingWrite }
                let values = try await onLoop(loop) { () -> [UInt8] in
                    var values: [UInt8] = []
                    // One receive per datagram sent: an empty one shows in the values.
                    for _ in 0..<count { values += try await receiver.receive(upTo: 8).bytes }
                    return values
                }
                try await sending.value
                #expect(values == (0..<count).map { UInt8($0) })
                try receiver.close()
                try sender.close()
            }
        }

        @Test("an unbound socket connects to a path and sends without an address", arguments: BackendKind.availableHere)
        func connected(backend: BackendKind) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try await withLoop(backend) { loop in
                let address = try directory.address("connected.sock")
                let server = try UnixDatagramSocket.bind(to: address, on: loop)
                let client = try UnixDatagramSocket.unbound(on: loop)
                try client.connect(to: address)
                try await onLoop(loop) { try await client.send([8, 8]) }
                #expect(try await onLoop(loop) { try await server.receive(upTo: 8) }.bytes == [8, 8])

                let missing = try directory.address("missing.sock")
                let error = #expect(throws: IOError.self) { try client.connect(to: missing) }
                #expect(error?.errno == .noSuchFileOrDirectory)
                #expect(error?.operation == .connect)
                #expect(error?.address == missing)
                try server.close()
                try client.close()
            }
        }

        @Test("a send to a path nobody is bound to fails, naming the path", arguments: BackendKind.availableHere)
        func sendToNobody(backend: BackendKind) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try await withLoop(backend) { loop in
                let socket = try UnixDatagramSocket.unbound(on: loop)
                let nobody = try directory.address("nobody.sock")
                let error = await #expect(throws: IOError.self) {
                    try await onLoop(loop) { try await socket.send([1], to: nobody) }
                }
                #expect(error?.errno == .noSuchFileOrDirectory)
                #expect(error?.operation == .send)
                #expect(error?.address == nobody)
                try socket.close()
            }
        }

        @Test("cancelling a pending receive resumes it with CancellationError", arguments: BackendKind.availableHere)
        func cancelReceive(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let (a, b) = try UnixDatagramSocket.pair(on: loop)
                let receiving = Task(executorPreference: loop) { try await a.receive(upTo: 8) }
                try await waitUntil { a.descriptor.io.isAwaitingRead }
                receiving.cancel()
                await #expect(throws: CancellationError.self) { try await receiving.value }
                try await onLoop(loop) { try await b.send([4]) }
                #expect(try await onLoop(loop) { try await a.receive(upTo: 8) }.bytes == [4])
                try a.close()
                try b.close()
            }
        }
    }
}
