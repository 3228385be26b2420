import CReactor
import Glibc
import SystemPackage
import Testing

@testable import Reactor

/// Waits until the loop has a completion operation in flight, asking on its thread.
private func waitForOperationInFlight(on loop: EventLoop) async throws {
    let limit = ContinuousClock.now.advanced(by: .seconds(60))
    while try await onLoop(loop, { loop.reactor.operationsInFlight }) == 0 {
        guard ContinuousClock.now < limit else {
            Issue.record("no operation started")
            throw CancellationError()
        }
    }
}

/// Whether a UDP socket can bind `address` now (its port is free).
private func canBind(_ address: SocketAddress) -> Bool {
    let fd = socket(AF_INET, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
    defer { close(fd) }
    return address.withSockAddr { bind(fd, $0, $1) } == 0
}

extension ReactorTests {
    @Suite(.enabled(if: uringRuns, "the kernel refuses io_uring here"), .timeLimit(.minutes(1)))
    struct URingOperationTests {
        @Test("a TCP connect on the loop runs as one CONNECT, and the stream works")
        func tcpConnectThroughRing() async throws {
            try await withLoop(.uring) { loop in
                let listener = try TCPListener.bind(to: .ipv4(127, 0, 0, 1, port: 0), on: loop)
                let address = try listener.localAddress
                let before = try await uringSubmissions(of: CREACTOR_IORING_OP_CONNECT, on: loop)
                let echoed = try await onLoop(loop) { () -> [UInt8] in
                    let client = try await TCPStream.connect(to: address)
                    let server = try await listener.accept()
                    try await client.write([1, 2, 3])
                    let bytes = try await server.read(exactly: 3)
                    try client.close()
                    try server.close()
                    return bytes
                }
                #expect(echoed == [1, 2, 3])
                #expect(try await uringSubmissions(of: CREACTOR_IORING_OP_CONNECT, on: loop) == before + 1)
                try listener.close()
            }
        }

        @Test("a refused connect through the ring names .connect, ECONNREFUSED and the address")
        func connectRefusedThroughRing() async throws {
            try await withLoop(.uring) { loop in
                try await withRefusingPort { address in
                    let before = try await uringSubmissions(of: CREACTOR_IORING_OP_CONNECT, on: loop)
                    let error = await #expect(throws: IOError.self) {
                        try await onLoop(loop) { _ = try await TCPStream.connect(to: address) }
                    }
                    #expect(error == IOError(.connect, .connectionRefused, address: address))
                    #expect(try await uringSubmissions(of: CREACTOR_IORING_OP_CONNECT, on: loop) == before + 1)
                }
            }
        }

        @Test("a Unix stream connect on the loop runs as a CONNECT")
        func unixConnectThroughRing() async throws {
            try await withLoop(.uring) { loop in
                let address = try SocketAddress.unixAbstract(name: "reactor-uring-\(UInt64.random(in: 0...UInt64.max))")
                let listener = try UnixListener.bind(to: address, on: loop)
                let before = try await uringSubmissions(of: CREACTOR_IORING_OP_CONNECT, on: loop)
                let peer = try await onLoop(loop) { () -> SocketAddress in
                    let client = try await UnixStream.connect(to: address)
                    let server = try await listener.accept()
                    try client.close()
                    try server.close()
                    return client.peerAddress
                }
                #expect(peer == address)
                #expect(try await uringSubmissions(of: CREACTOR_IORING_OP_CONNECT, on: loop) == before + 1)
                try listener.close()
            }
        }

        @Test("a Unix connect to a full backlog through the ring retries, and times out")
        func unixConnectFullBacklog() async throws {
            try await withLoop(.uring) { loop in
                let address = try SocketAddress.unixAbstract(name: "reactor-uring-\(UInt64.random(in: 0...UInt64.max))")
                let listener = try UnixListener.bind(to: address, backlog: 0, on: loop)
                let outcome = try await onLoop(loop) { () -> (held: [UnixStream], error: IOError?) in
                    var held: [UnixStream] = []
                    do {
                        for _ in 0..<16 { held.append(try await UnixStream.connect(to: address, timeout: .milliseconds(50))) }
                        return (held, nil)
                    } catch let error as IOError {
                        return (held, error)
                    }
                }
                #expect(outcome.error == IOError(.connect, .timedOut, address: address))
                for stream in outcome.held { try stream.close() }
                try listener.close()
            }
        }

        @Test("a connect cancelled in flight resumes only once the kernel ended it")
        func cancelledConnect() async throws {
            try await withLoop(.uring) { loop in
                // A listener that never accepts: once its queue is full, the kernel drops
                // further handshakes, and a connect waits.
                let listener = try TCPListener.bind(to: .ipv4(127, 0, 0, 1, port: 0), backlog: 0, on: loop)
                let address = try listener.localAddress
                var held: [TCPStream] = []
                var full = false
                for _ in 0..<32 where !full {
                    let attempt = try await onLoop(loop) { () -> (TCPStream?, inFlight: Int) in
                        do {
                            return (try await TCPStream.connect(to: address, timeout: .milliseconds(100)), 0)
                        } catch let error as IOError where error.errno == .timedOut {
                            return (nil, loop.reactor.operationsInFlight)
                        }
                    }
                    if let stream = attempt.0 { held.append(stream) } else { full = true }
                    #expect(attempt.inFlight == 0, "the connect that timed out ended in the kernel first")
                }
                #expect(full)
                let connecting = Task(executorPreference: loop) { () -> Int? in
                    do {
                        _ = try await TCPStream.connect(to: address)
                        return nil
                    } catch is CancellationError {
                        // Resumed on the loop, at the final completion or after it.
                        return loop.reactor.operationsInFlight
                    }
                }
                try await waitForOperationInFlight(on: loop)
                connecting.cancel()
                #expect(try await connecting.value == 0)
                for stream in held { try stream.close() }
                try listener.close()
            }
        }

        @Test("UDP datagrams go out as SENDMSG and come in as RECVMSG, with sender and truncation")
        func datagramsThroughRing() async throws {
            try await withLoop(.uring) { loop in
                let a = try UDPSocket.bind(to: .ipv4(127, 0, 0, 1, port: 0), on: loop)
                let b = try UDPSocket.bind(to: .ipv4(127, 0, 0, 1, port: 0), on: loop)
                let (aAddress, bAddress) = (try a.localAddress, try b.localAddress)
                let sent = try await uringSubmissions(of: CREACTOR_IORING_OP_SENDMSG, on: loop)
                let received = try await uringSubmissions(of: CREACTOR_IORING_OP_RECVMSG, on: loop)
                let (whole, cut) = try await onLoop(loop) { () -> (Datagram, ReceivedDatagram) in
                    try await a.send([1, 2, 3], to: bAddress)
                    let whole = try await b.receive(upTo: 16)
                    try await a.send(Array(1...8), to: bAddress)
                    let small = UnsafeMutableRawBufferPointer.allocate(byteCount: 4, alignment: 1)
                    defer { small.deallocate() }
                    return (whole, try await b.receive(into: small))
                }
                #expect(whole == Datagram(bytes: [1, 2, 3], sender: aAddress, isTruncated: false))
                #expect(cut == ReceivedDatagram(byteCount: 4, sender: aAddress, isTruncated: true))
                #expect(try await uringSubmissions(of: CREACTOR_IORING_OP_SENDMSG, on: loop) == sent + 2)
                #expect(try await uringSubmissions(of: CREACTOR_IORING_OP_RECVMSG, on: loop) == received + 2)
                try a.close()
                try b.close()
            }
        }

        @Test("Unix datagrams through the ring: connected sends, and an unbound sender is unnamed")
        func unixDatagramsThroughRing() async throws {
            try await withLoop(.uring) { loop in
                let (first, second) = try UnixDatagramSocket.pair(on: loop)
                let sent = try await uringSubmissions(of: CREACTOR_IORING_OP_SENDMSG, on: loop)
                let datagram = try await onLoop(loop) { () -> Datagram in
                    try await first.send([7, 8])
                    return try await second.receive(upTo: 8)
                }
                #expect(datagram == Datagram(bytes: [7, 8], sender: .unnamedUnix, isTruncated: false))
                #expect(try await uringSubmissions(of: CREACTOR_IORING_OP_SENDMSG, on: loop) == sent + 1)
                try first.close()
                try second.close()
            }
        }

        @Test("a second receive while one is in flight is refused as busy, and the first goes on")
        func secondReceiveIsBusy() async throws {
            try await withLoop(.uring) { loop in
                let (first, second) = try UnixDatagramSocket.pair(on: loop)
                let receiving = Task(executorPreference: loop) { try await second.receive(upTo: 8) }
                try await waitUntil { second.descriptor.io.isAwaitingRead }
                await #expect(throws: ReactorError.busy) { try await onLoop(loop) { try await second.receive(upTo: 8) } }
                try await onLoop(loop) { try await first.send([5]) }
                #expect(try await receiving.value.bytes == [5])
                try first.close()
                try second.close()
            }
        }

        @Test("a receive cancelled while the kernel holds its buffer returns once the kernel let go of it")
        func cancelledReceiveReleasesBuffer() async throws {
            try await withLoop(.uring) { loop in
                let (first, second) = try UnixDatagramSocket.pair(on: loop)
                nonisolated(unsafe) let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
                defer { buffer.deallocate() }
                buffer.initializeMemory(as: UInt8.self, repeating: 0xAA)
                for round in 0..<20 {
                    let receiving = Task(executorPreference: loop) { () -> Int? in
                        do {
                            _ = try await second.receive(into: buffer)
                            return nil
                        } catch is CancellationError {
                            return loop.reactor.operationsInFlight
                        }
                    }
                    try await waitUntil { second.descriptor.io.isAwaitingRead }
                    receiving.cancel()
                    #expect(try await receiving.value == 0)
                    // The cancelled receive is over in the kernel: the next datagram reaches
                    // the next receive, and the first buffer is never touched.
                    try await onLoop(loop) { try await first.send([UInt8(round)]) }
                    #expect(try await onLoop(loop) { try await second.receive(upTo: 8) }.bytes == [UInt8(round)])
                    #expect(buffer.allSatisfy { $0 == 0xAA })
                }
                try first.close()
                try second.close()
            }
        }

        @Test("closing a UDP socket with a receive in flight resumes it with .closed, and frees its port through CLOSE")
        func closeWithReceiveInFlight() async throws {
            try await withLoop(.uring) { loop in
                let socket = try UDPSocket.bind(to: .ipv4(127, 0, 0, 1, port: 0), on: loop)
                let address = try socket.localAddress
                let closes = try await uringSubmissions(of: CREACTOR_IORING_OP_CLOSE, on: loop)
                let receiving = Task(executorPreference: loop) { try await socket.receive(upTo: 8) }
                try await waitUntil { socket.descriptor.io.isAwaitingRead }
                #expect(!canBind(address))
                // Closed on the loop, the receive's cancellation can end only at a later turn:
                // its end releases the descriptor, on the loop, as a CLOSE that goes to the
                // kernel with the loop's next wait.
                try await onLoop(loop) { try socket.close() }
                await #expect(throws: ReactorError.closed) { try await receiving.value }
                try await waitUntil { canBind(address) }
                #expect(try await uringSubmissions(of: CREACTOR_IORING_OP_CLOSE, on: loop) == closes + 1)
            }
        }

        @Test("a close on the loop with nothing in flight is a CLOSE; elsewhere it is close(2)")
        func closeOnLoopThroughRing() async throws {
            try await withLoop(.uring) { loop in
                let onLoopSocket = try UDPSocket.bind(to: .ipv4(127, 0, 0, 1, port: 0), on: loop)
                let offLoopSocket = try UDPSocket.bind(to: .ipv4(127, 0, 0, 1, port: 0), on: loop)
                let (onLoopAddress, offLoopAddress) = (try onLoopSocket.localAddress, try offLoopSocket.localAddress)
                let closes = try await uringSubmissions(of: CREACTOR_IORING_OP_CLOSE, on: loop)
                try await onLoop(loop) { try onLoopSocket.close() }
                try await waitUntil { canBind(onLoopAddress) }
                #expect(try await uringSubmissions(of: CREACTOR_IORING_OP_CLOSE, on: loop) == closes + 1)
                try offLoopSocket.close()
                #expect(canBind(offLoopAddress), "close(2) released the port before returning")
                #expect(try await uringSubmissions(of: CREACTOR_IORING_OP_CLOSE, on: loop) == closes + 1)
            }
        }
    }
}
