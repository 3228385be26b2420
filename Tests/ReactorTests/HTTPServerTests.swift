import Reactor
import ReactorServers
import Testing

/// A response as the tests read it: written here from RFC 9112, apart from the server's parser.
private struct Response {
    var statusLine: String
    var headers: [(name: String, value: String)]
    var body: String

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// A client connection that reads responses one at a time, keeping what arrives past the
/// current one for the next.
private final class Client {
    let stream: TCPStream
    private var pending: [UInt8] = []

    init(_ address: SocketAddress, on loop: EventLoop) async throws {
        stream = try await TCPStream.connect(to: address, on: loop)
    }

    func send(_ text: String) async throws {
        try await stream.write(Array(text.utf8))
    }

    /// Reads the next response; `hasBody` is false for the answer to a HEAD request.
    /// Returns nil if the stream ends first.
    func response(hasBody: Bool = true) async throws -> Response? {
        var bytes = pending
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if let headEnd = bytes.firstRange(of: Array("\r\n\r\n".utf8))?.upperBound {
                let lines = String(decoding: bytes[..<(headEnd - 4)], as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
                let headers = lines.dropFirst().map { line in
                    let colon = line.firstIndex(of: ":")!
                    return (String(line[..<colon]), String(line[line.index(after: colon)...].drop { $0 == " " }))
                }
                var response = Response(statusLine: String(lines[0]), headers: headers, body: "")
                let length = hasBody ? Int(response.header("Content-Length") ?? "0")! : 0
                if bytes.count >= headEnd + length {
                    response.body = String(decoding: bytes[headEnd..<(headEnd + length)], as: UTF8.self)
                    pending = Array(bytes[(headEnd + length)...])
                    return response
                }
            }
            let count = try await stream.read(into: &buffer)
            if count == 0 {
                #expect(bytes.isEmpty, "the stream ended inside a response")
                return nil
            }
            bytes += buffer[..<count]
        }
    }

    /// Whether the server ended the stream, with nothing more after the responses read.
    func isAtEnd() async throws -> Bool {
        guard pending.isEmpty else { return false }
        var buffer = [UInt8](repeating: 0, count: 1024)
        return try await stream.read(into: &buffer) == 0
    }

    func close() throws { try stream.close() }
}

private let helloWorld = "Hello, World!"

/// A minimal valid request.
private func get(_ path: String = "/", _ extraHeaders: String = "", version: String = "HTTP/1.1") -> String {
    "GET \(path) \(version)\r\nHost: localhost\r\n\(extraHeaders)\r\n"
}

/// Runs `body` with an HTTP server and a loop for clients; afterwards a fresh client
/// must still get its 200.
private func withHTTPServer(
    backend: BackendKind, _ body: @escaping @Sendable (SocketAddress, EventLoop) async throws -> Void
) async throws {
    try await withServer(backend: backend, handler: { try await HTTPServer.handle($0) }) { address, loop in
        try await onLoop(loop) {
            try await body(address, loop)
            let fresh = try await Client(address, on: loop)
            try await fresh.send(get())
            let response = try #require(try await fresh.response())
            #expect(response.statusLine == "HTTP/1.1 200 OK", "a fresh client is served afterwards")
            #expect(response.body == helloWorld)
            try fresh.close()
        }
    }
}

extension ReactorTests {
    @Suite(.timeLimit(.minutes(1))) struct HTTPServerTests {
        @Test("a GET gets 200 with the exact body, and the connection stays open", arguments: BackendKind.availableHere)
        func singleGet(backend: BackendKind) async throws {
            try await withHTTPServer(backend: backend) { address, loop in
                let client = try await Client(address, on: loop)
                try await client.send(get())
                let response = try #require(try await client.response())
                #expect(response.statusLine == "HTTP/1.1 200 OK")
                #expect(response.header("Content-Type") == "text/plain")
                #expect(response.header("Content-Length") == "13")
                #expect(response.header("Connection") == nil)
                #expect(response.body == helloWorld)
                // Keep-alive: the same connection serves the next request.
                try await client.send(get("/again"))
                #expect(try await client.response()?.body == helloWorld)
                try client.close()
            }
        }

        @Test("three requests in one write get three responses, in order", arguments: BackendKind.availableHere)
        func pipelining(backend: BackendKind) async throws {
            try await withHTTPServer(backend: backend) { address, loop in
                let client = try await Client(address, on: loop)
                try await client.send(
                    get("/first")
                        + "POST /second HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello"
                        + "HEAD /third HTTP/1.1\r\nHost: localhost\r\n\r\n")
                let first = try #require(try await client.response())
                let second = try #require(try await client.response())
                let third = try #require(try await client.response(hasBody: false))
                #expect(first.statusLine == "HTTP/1.1 200 OK")
                #expect(first.body == helloWorld)
                #expect(second.statusLine == "HTTP/1.1 405 Method Not Allowed")
                #expect(second.header("Allow") == "GET, HEAD")
                #expect(third.statusLine == "HTTP/1.1 200 OK")
                #expect(third.header("Content-Length") == "13")
                // The POST's body was skipped, not read as a request: the connection is still good.
                try await client.send(get("/fourth"))
                #expect(try await client.response()?.body == helloWorld)
                try client.close()
            }
        }

        @Test("a request that arrives a byte at a time is answered once complete", arguments: BackendKind.availableHere)
        func byteAtATime(backend: BackendKind) async throws {
            try await withHTTPServer(backend: backend) { address, loop in
                let client = try await Client(address, on: loop)
                try client.stream.setOption(.noDelay, to: true)
                for byte in get("/slow", "User-Agent: tests\r\n").utf8 { try await client.stream.write([byte]) }
                #expect(try await client.response()?.body == helloWorld)
                try client.close()
            }
        }

        @Test("Connection: close gets the response, then end of stream", arguments: BackendKind.availableHere)
        func connectionClose(backend: BackendKind) async throws {
            try await withHTTPServer(backend: backend) { address, loop in
                let client = try await Client(address, on: loop)
                // Header names and the option are case-insensitive.
                try await client.send(get("/", "connection: Close\r\n") + get("/ignored"))
                let response = try #require(try await client.response())
                #expect(response.statusLine == "HTTP/1.1 200 OK")
                #expect(response.header("Connection") == "close")
                #expect(response.body == helloWorld)
                #expect(try await client.isAtEnd())
                try client.close()
            }
        }

        @Test("HTTP/1.0 closes after the response unless it asks for keep-alive", arguments: BackendKind.availableHere)
        func http10(backend: BackendKind) async throws {
            try await withHTTPServer(backend: backend) { address, loop in
                let plain = try await Client(address, on: loop)
                try await plain.send("GET / HTTP/1.0\r\n\r\n")
                let response = try #require(try await plain.response())
                #expect(response.statusLine == "HTTP/1.1 200 OK")
                #expect(response.header("Connection") == "close")
                #expect(response.body == helloWorld)
                #expect(try await plain.isAtEnd())
                try plain.close()

                let keepAlive = try await Client(address, on: loop)
                try await keepAlive.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                let first = try #require(try await keepAlive.response())
                #expect(first.header("Connection") == "keep-alive")
                try await keepAlive.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                #expect(try await keepAlive.response()?.body == helloWorld)
                try keepAlive.close()
            }
        }

        @Test("a malformed request gets 400, then end of stream", arguments: BackendKind.availableHere)
        func malformed(backend: BackendKind) async throws {
            let requests = [
                "GARBAGE\r\n\r\n",
                "GET  / HTTP/1.1\r\nHost: localhost\r\n\r\n",
                "GET / HTTP/1.1 \r\nHost: localhost\r\n\r\n",
                "GET / HTTP/1.1\r\nHost localhost\r\n\r\n",
                "GET / HTTP/1.1\r\nHost : localhost\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: localhost\r\n folded\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: local\nhost\r\n\r\n",
                "GET / HTTP/1.1\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n",
            ]
            try await withHTTPServer(backend: backend) { address, loop in
                for request in requests {
                    let client = try await Client(address, on: loop)
                    try await client.send(request)
                    let response = try #require(try await client.response())
                    #expect(response.statusLine == "HTTP/1.1 400 Bad Request", "for \(request.debugDescription)")
                    #expect(response.header("Connection") == "close")
                    #expect(try await client.isAtEnd())
                    try client.close()
                }
            }
        }

        @Test("a 70 KiB head gets 431, then end of stream", arguments: BackendKind.availableHere)
        func oversizedHead(backend: BackendKind) async throws {
            try await withHTTPServer(backend: backend) { address, loop in
                let client = try await Client(address, on: loop)
                try await client.send(get("/", "X-Padding: \(String(repeating: "a", count: 70 * 1024))\r\n"))
                let response = try #require(try await client.response())
                #expect(response.statusLine == "HTTP/1.1 431 Request Header Fields Too Large")
                #expect(try await client.isAtEnd())
                try client.close()
            }
        }

        @Test("a head of exactly 64 KiB is served; one byte more is refused", arguments: BackendKind.availableHere)
        func headLimit(backend: BackendKind) async throws {
            try await withHTTPServer(backend: backend) { address, loop in
                for (extra, status) in [(0, "HTTP/1.1 200 OK"), (1, "HTTP/1.1 431 Request Header Fields Too Large")] {
                    let bare = get("/", "X-Padding: \r\n")
                    let padding = String(repeating: "b", count: HTTPServer.maximumHeadLength - bare.utf8.count + extra)
                    let request = get("/", "X-Padding: \(padding)\r\n")
                    #expect(request.utf8.count == HTTPServer.maximumHeadLength + extra)
                    let client = try await Client(address, on: loop)
                    try await client.send(request)
                    #expect(try await client.response()?.statusLine == status)
                    try client.close()
                }
            }
        }

        @Test("a version other than 1.x gets 505, a Transfer-Encoding 501", arguments: BackendKind.availableHere)
        func unsupported(backend: BackendKind) async throws {
            try await withHTTPServer(backend: backend) { address, loop in
                for (request, status) in [
                    ("GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported"),
                    ("POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 501 Not Implemented"),
                ] {
                    let client = try await Client(address, on: loop)
                    try await client.send(request)
                    #expect(try await client.response()?.statusLine == status)
                    #expect(try await client.isAtEnd())
                    try client.close()
                }
            }
        }
    }
}
