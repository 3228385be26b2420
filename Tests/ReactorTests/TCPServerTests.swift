import Reactor
import ReactorServers
import Testing

extension ReactorTests {
    @Suite(.timeLimit(.minutes(1))) struct TCPServerTests {
        @Test("one listener per loop shares the port; each connection is served on the loop that accepted it, with TCP_NODELAY", arguments: BackendKind.availableHere)
        func listenerPerLoop(backend: BackendKind) async throws {
            try await withEventLoopGroup(loopCount: 2, backend: backend) { servers in
                try await withEventLoopGroup(loopCount: 1, backend: backend) { clients in
                    // Per connection: the loop its handler ran on, and whether that is the
                    // connection's own loop.
                    let served = Recorder<(ObjectIdentifier, Bool)>()
                    let noDelay = Recorder<Bool>()
                    let server = try TCPServer(bindingTo: .ipv4(127, 0, 0, 1, port: 0), on: servers.loops) { connection in
                        let loop = try #require(EventLoop.current)
                        served.append((ObjectIdentifier(loop), connection.eventLoop === loop))
                        noDelay.append(try connection.option(.noDelay))
                        try await EchoServer.handle(connection)
                    }
                    #expect(server.address.port != 0)
                    #expect(server.loops.map(ObjectIdentifier.init) == servers.loops.map(ObjectIdentifier.init))
                    // The kernel spreads connections by a hash of their addresses: with 64,
                    // both listeners get some unless the hash is badly broken (2^-63).
                    let loop = clients.loops[0]
                    try await onLoop(loop) {
                        for index in 0..<64 {
                            let client = try await TCPStream.connect(to: server.address, on: loop)
                            try await client.write([UInt8(index)])
                            #expect(try await client.read(exactly: 1) == [UInt8(index)])
                            try client.close()
                        }
                    }
                    #expect(try await server.shutdown(gracePeriod: .seconds(30)))
                    #expect(served.elements.count == 64)
                    #expect(served.elements.allSatisfy { $0.1 })
                    #expect(noDelay.elements.count == 64 && noDelay.elements.allSatisfy { $0 }, "inherited from the listener")
                    #expect(Set(served.elements.map(\.0)) == Set(servers.loops.map(ObjectIdentifier.init)))
                }
            }
        }

        @Test("shutdown lets open connections end, and cancels those that outlast the grace period", arguments: BackendKind.availableHere)
        func shutdownGracePeriod(backend: BackendKind) async throws {
            try await withEventLoopGroup(loopCount: 2, backend: backend) { group in
                let server = try TCPServer(bindingTo: .ipv4(127, 0, 0, 1, port: 0), on: [group.loops[0]]) {
                    try await EchoServer.handle($0)
                }
                let loop = group.loops[1]
                let idle = try await onLoop(loop) { () -> TCPStream in
                    let client = try await TCPStream.connect(to: server.address, on: loop)
                    try await client.write([1])
                    _ = try await client.read(exactly: 1)
                    return client
                }
                // The idle client never closes: its handler is cancelled when the grace period ends.
                #expect(try await server.shutdown(gracePeriod: .milliseconds(100)) == false)
                #expect(try await onLoop(loop) { try await readToEnd(idle) } == [], "the server closed the connection")
                try idle.close()
                // The listener is closed: nobody accepts any more.
                await #expect(throws: IOError.self) {
                    try await onLoop(loop) { _ = try await TCPStream.connect(to: server.address, on: loop) }
                }
            }
        }

        @Test("binding an address already in use throws addressInUse", arguments: BackendKind.availableHere)
        func addressInUse(backend: BackendKind) async throws {
            try await withEventLoopGroup(loopCount: 2, backend: backend) { group in
                let first = try TCPServer(bindingTo: .ipv4(127, 0, 0, 1, port: 0), on: [group.loops[0]]) { _ in }
                let error = #expect(throws: IOError.self) {
                    _ = try TCPServer(bindingTo: first.address, on: group.loops) { _ in }
                }
                #expect(error?.errno == .addressInUse)
                #expect(try await first.shutdown(gracePeriod: .seconds(30)))
            }
        }
    }
}
