import Reactor
import ReactorServers
import Testing

/// Runs `body` with a server of `handler` on a loop of its own, listening on an ephemeral
/// loopback port, and gives it the server's address and a second loop for clients.
/// Afterwards the server is shut down, and every connection must have ended by itself:
/// `body` closes the connections it opens.
func withServer<Result: Sendable>(
    backend: BackendKind,
    handler: @escaping @Sendable (TCPStream) async throws -> Void,
    _ body: (SocketAddress, EventLoop) async throws -> Result
) async throws -> Result {
    try await withEventLoopGroup(loopCount: 2, backend: backend) { group in
        let server = try TCPServer(bindingTo: .ipv4(127, 0, 0, 1, port: 0), on: [group.loops[0]], handler: handler)
        let result: Result
        do {
            result = try await body(server.address, group.loops[1])
        } catch {
            _ = try? await server.shutdown(gracePeriod: .zero)
            throw error
        }
        let drained = try await server.shutdown(gracePeriod: .seconds(20))
        #expect(drained, "every connection ended by itself once its client closed")
        return result
    }
}

/// Reads from `stream` until the peer ends the stream; returns everything read.
func readToEnd(_ stream: TCPStream) async throws -> [UInt8] {
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    while case let count = try await stream.read(into: &buffer), count > 0 {
        received += buffer[..<count]
    }
    return received
}
