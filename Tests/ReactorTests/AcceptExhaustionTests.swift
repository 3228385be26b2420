import Glibc
import Reactor
import Testing

/// The `reactor` executable built next to this test bundle, if there is one.
private let reactorExecutable: String? = {
    var path = [CChar](repeating: 0, count: 4096)
    let length = readlink("/proc/self/exe", &path, path.count - 1)
    guard length > 0 else { return nil }
    let bundle = String(decoding: path.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard let slash = bundle.lastIndex(of: "/") else { return nil }
    let candidate = bundle[..<slash] + "/reactor"
    return access(String(candidate), X_OK) == 0 ? String(candidate) : nil
}()

extension ReactorTests {
    @Suite struct AcceptExhaustionTests {
        @Test(
            "a server out of descriptors (EMFILE) backs off without spinning, and recovers once they are freed",
            .enabled(if: reactorExecutable != nil && access("/usr/bin/prlimit", X_OK) == 0),
            arguments: BackendKind.availableHere)
        func recovers(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let limit = 64
                let child = try ChildProcess.spawn(
                    ["/usr/bin/prlimit", "--nofile=\(limit):\(limit)", reactorExecutable!,
                     "echo", "--port", "0", "--backend", backend.rawValue],
                    on: loop)
                var stopped = false
                defer { if !stopped { child.kill() } }
                // "echo server on 127.0.0.1:PORT: ..."
                let banner = String(decoding: try await child.read { $0.contains(UInt8(ascii: "\n")) }, as: UTF8.self)
                let text = try #require(banner.split(separator: " ").dropFirst(3).first).dropLast()
                let address = try SocketAddress(parsing: String(text))

                // More clients than the server has descriptors for; each sends a byte.
                let clients = try await onLoop(loop) { () -> [TCPStream] in
                    var clients: [TCPStream] = []
                    for _ in 0..<(limit + 40) {
                        let client = try await TCPStream.connect(to: address)
                        try await client.write([1])
                        clients.append(client)
                    }
                    return clients
                }
                // The server accepts until its descriptor table is full, then gets EMFILE.
                try await waitUntil { child.openDescriptorCount >= limit }

                // Out of descriptors with connections pending, it must not spin: over
                // half a second it may use a small share of a CPU, not all of it.
                let before = child.cpuTicks
                try await onLoop(loop) { try await loop.clock.sleep(for: .milliseconds(500)) }
                let used = child.cpuTicks - before
                let ticksPerSecond = sysconf(Int32(_SC_CLK_TCK))
                #expect(used < ticksPerSecond / 5, "\(used) ticks of CPU in 0.5 s while out of descriptors")

                // Freed descriptors let it accept again: a new client is served.
                for client in clients { try client.close() }
                let echoed = try await onLoop(loop) { () -> [UInt8] in
                    try await withTimeout(.seconds(30)) {
                        let client = try await TCPStream.connect(to: address)
                        try await client.write([7])
                        let byte = try await client.read(exactly: 1)
                        try client.close()
                        return byte
                    }
                }
                #expect(echoed == [7])
                stopped = true
                #expect(try await child.terminate() == 0, "it stops cleanly on SIGTERM")
            }
        }
    }
}
