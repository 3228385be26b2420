import Glibc
import SystemPackage
import Testing

@testable import Reactor

extension ReactorTests {
    @Suite struct UnixStreamTests {
        @Test("a path listener serves a stream, and each side knows the other's credentials", arguments: BackendKind.availableHere)
        func pathRoundTrip(backend: BackendKind) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try await withLoop(backend) { loop in
                let address = try directory.address("server.sock")
                let listener = try UnixListener.bind(to: address, on: loop)
                let server = Task(executorPreference: loop) { () -> PeerCredentials in
                    let connection = try await listener.accept()
                    let request = try await connection.read(exactly: 4)
                    try await connection.write(request.reversed())
                    let credentials = try connection.peerCredentials
                    try connection.close()
                    return credentials
                }
                let reply = try await onLoop(loop) { () -> [UInt8] in
                    let stream = try await UnixStream.connect(to: address)
                    #expect(stream.peerAddress == address)
                    #expect(try stream.peerCredentials.processID == getpid())
                    try await stream.write([1, 2, 3, 4])
                    let reply = try await stream.read(exactly: 4)
                    try stream.close()
                    return reply
                }
                #expect(reply == [4, 3, 2, 1])
                let credentials = try await server.value
                #expect(credentials.processID == getpid())
                #expect(credentials.userID == getuid())
                #expect(credentials.groupID == getgid())
                try listener.close()
            }
        }

        @Test("an abstract name needs no file", arguments: BackendKind.availableHere)
        func abstractName(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let address = try SocketAddress.unixAbstract(name: "reactor-test-\(UInt64.random(in: 0...UInt64.max))")
                let listener = try UnixListener.bind(to: address, on: loop)
                #expect(try listener.localAddress == address)
                let server = Task(executorPreference: loop) {
                    let connection = try await listener.accept()
                    try await connection.write([42])
                    try connection.close()
                }
                let byte = try await onLoop(loop) { () -> [UInt8] in
                    let stream = try await UnixStream.connect(to: address)
                    let byte = try await stream.read(exactly: 1)
                    try stream.close()
                    return byte
                }
                #expect(byte == [42])
                try await server.value
                try listener.close()
            }
        }

        @Test("a socketpair is two connected streams", arguments: BackendKind.availableHere)
        func pair(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let (left, right) = try UnixStream.pair(on: loop)
                try await onLoop(loop) { try await left.write(Array("ping".utf8)) }
                #expect(try await onLoop(loop) { try await right.read(exactly: 4) } == Array("ping".utf8))
                try left.shutdown(.writing)
                let afterEnd = try await onLoop(loop) { () -> Int in
                    var buffer = [UInt8](repeating: 0, count: 8)
                    return try await right.read(into: &buffer)
                }
                #expect(afterEnd == 0)
                #expect(try right.peerCredentials.processID == getpid())
                try left.close()
                try right.close()
            }
        }

        @Test("a stale socket file is removed only when asked, and a live one never", arguments: BackendKind.availableHere)
        func staleFile(backend: BackendKind) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try await withLoop(backend) { loop in
                let address = try directory.address("stale.sock")
                try UnixListener.bind(to: address, on: loop).close()
                #expect(directory.exists("stale.sock"), "closing leaves the file behind")
                let inUse = #expect(throws: IOError.self) { _ = try UnixListener.bind(to: address, on: loop) }
                #expect(inUse?.errno == .addressInUse)
                #expect(inUse?.address == address)
                let listener = try UnixListener.bind(to: address, removingStaleFile: true, on: loop)
                // Live now: a second listener asking the same must not take its file.
                let live = #expect(throws: IOError.self) {
                    _ = try UnixListener.bind(to: address, removingStaleFile: true, on: loop)
                }
                #expect(live?.errno == .addressInUse)
                let connected = try await onLoop(loop) { try await UnixStream.connect(to: address) }
                try connected.close()
                try listener.close()
            }
        }

        @Test("connecting where nobody listens fails with a typed error", arguments: BackendKind.availableHere)
        func nobodyListens(backend: BackendKind) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try await withLoop(backend) { loop in
                let missing = try directory.address("missing.sock")
                let error = await #expect(throws: IOError.self) {
                    try await onLoop(loop) { _ = try await UnixStream.connect(to: missing) }
                }
                #expect(error?.errno == .noSuchFileOrDirectory)
                #expect(error?.operation == .connect)
                #expect(error?.address == missing)
            }
        }
    }
}
