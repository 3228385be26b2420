#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Reactor

/// A plaintext HTTP/1.1 server: every `GET` is answered `200 OK` with the body
/// `Hello, World!`.
///
/// ```swift
/// let server = try TCPServer(bindingTo: .ipv4(127, 0, 0, 1, port: 8080), on: group.loops) { connection in
///     try await HTTPServer.handle(connection)
/// }
/// ```
///
/// What it answers:
///
/// | request | response | then |
/// |---|---|---|
/// | `GET` | `200 OK`, `Content-Type: text/plain`, `Content-Length: 13`, `Hello, World!` | keep-alive |
/// | `HEAD` | the same head, no body | keep-alive |
/// | any other method | `405 Method Not Allowed`, `Allow: GET, HEAD`; its body is read and skipped | keep-alive |
/// | a request line or header line that breaks RFC 9112, or HTTP/1.1 without one `Host` | `400 Bad Request` | close |
/// | a head (request line and headers) over 64 KiB | `431 Request Header Fields Too Large` | close |
/// | a `Transfer-Encoding` | `501 Not Implemented` | close |
/// | a version other than 1.x | `505 HTTP Version Not Supported` | close |
///
/// Connections are kept alive by default. `Connection: close` closes after the
/// response; an HTTP/1.0 request closes after its response unless it says
/// `Connection: keep-alive`, which the response then repeats. Pipelined requests are
/// answered in order: every complete request in the buffer is parsed, and their
/// responses go out together in one write. The responses carry no `Date` header, so each
/// one is fixed bytes built once.
///
/// One client's request, bad or slow, affects only its own connection.
public enum HTTPServer {
    /// The longest request head (request line and headers, with the empty line that ends
    /// them) answered with anything but `431`: 64 KiB.
    public static let maximumHeadLength = HTTPRequestParser.maximumHeadLength

    /// How long a connection the server closes keeps reading, and discarding, what the
    /// client still sends; see ``handle(_:)``.
    public static let lingerTimeout = Duration.seconds(2)

    /// Serves HTTP requests on `connection` until the client closes it, or the server
    /// decides to (after `Connection: close`, an HTTP/1.0 request, or an error response).
    ///
    /// A connection holds a request buffer of 4 KiB, which grows up to
    /// ``maximumHeadLength`` only while a longer head arrives, and a response buffer of
    /// 4 KiB; serving a request allocates nothing. When the server closes, it shuts down
    /// its writing side and reads, for up to ``lingerTimeout``, until the client closes
    /// too: closing a socket with unread input resets the connection, and the client could
    /// lose the response (RFC 9112 §9.6).
    ///
    /// Run it on the connection's loop (``TCPServer`` and
    /// ``StreamListener/serve(on:maxConnections:_:)`` do).
    ///
    /// - Parameter connection: a connected stream; it is left open.
    /// - Throws: what the connection's `read` and `write` throw, for example ``IOError``
    ///   with `Errno.connectionReset`.
    nonisolated(nonsending) public static func handle<Connection: StreamSocket>(_ connection: Connection) async throws {
        var requests = RequestBuffer(capacity: 4 * 1024, limit: maximumHeadLength)
        var responses = ResponseBuffer(capacity: 4 * 1024)
        // Bytes of the current request's body not read yet; they are skipped.
        var bodyLeft = 0
        while true {
            requests.makeRoom()
            let count = try await connection.read(into: requests.freeSpace)
            if count == 0 { return }
            requests.didRead(count)

            var closing = false
            parsing: while !closing {
                if bodyLeft > 0 {
                    bodyLeft -= requests.skip(upTo: bodyLeft)
                    if bodyLeft > 0 { break parsing }
                }
                let response: HTTPResponse
                switch requests.nextHead() {
                case .incomplete:
                    break parsing
                case .tooLarge:
                    response = HTTPResponse(refusing: .headTooLarge)
                case .complete(let head):
                    do {
                        let request = try HTTPRequestParser.parse(head)
                        response = HTTPResponse(answering: request)
                        bodyLeft = request.contentLength
                    } catch {
                        response = HTTPResponse(refusing: error)
                    }
                }
                if !responses.hasRoom(for: response) {
                    try await connection.write(responses.bytes)
                    responses.removeAll()
                }
                responses.append(response)
                closing = response.closesConnection
            }
            if !responses.isEmpty {
                try await connection.write(responses.bytes)
                responses.removeAll()
            }
            if closing {
                await lingeringClose(connection)
                return
            }
        }
    }

    /// Shuts down the writing side, then discards what the client sends until it closes,
    /// for up to ``lingerTimeout`` and 1 MiB.
    nonisolated(nonsending) private static func lingeringClose<Connection: StreamSocket>(_ connection: Connection) async {
        do {
            try connection.shutdown(.writing)
            _ = try await withTimeout(lingerTimeout, on: connection.eventLoop) {
                let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 1024, alignment: 16)
                defer { scratch.deallocate() }
                var discarded = 0
                while discarded < 1 << 20 {
                    let count = try await connection.read(into: scratch)
                    if count == 0 { return }
                    discarded += count
                }
            }
        } catch {
            // A client that resets, or outstays the timeout, is closed on anyway: the
            // response was sent, and lingering is a courtesy.
        }
    }
}

/// One of the fixed responses, chosen by status, `Connection` header and whether a body
/// follows the head.
struct HTTPResponse {
    /// The statuses this server answers with.
    enum Status: Int, CaseIterable {
        case ok, methodNotAllowed, badRequest, headTooLarge, notImplemented, versionNotSupported

        var line: String {
            switch self {
            case .ok: "200 OK"
            case .methodNotAllowed: "405 Method Not Allowed"
            case .badRequest: "400 Bad Request"
            case .headTooLarge: "431 Request Header Fields Too Large"
            case .notImplemented: "501 Not Implemented"
            case .versionNotSupported: "505 HTTP Version Not Supported"
            }
        }

        var extraHeaders: String { self == .methodNotAllowed ? "Allow: GET, HEAD\r\n" : "" }

        var body: String {
            switch self {
            case .ok: "Hello, World!"
            case .methodNotAllowed: "Method Not Allowed"
            case .badRequest: "Bad Request"
            case .headTooLarge: "Request Header Fields Too Large"
            case .notImplemented: "Not Implemented"
            case .versionNotSupported: "HTTP Version Not Supported"
            }
        }
    }

    /// What the `Connection` header says, if there is one.
    enum ConnectionHeader: Int, CaseIterable {
        /// None: the HTTP/1.1 default, keep-alive.
        case none
        /// `Connection: keep-alive`, for an HTTP/1.0 client that asked for it.
        case keepAlive
        /// `Connection: close`: the server closes after this response.
        case close

        var line: String {
            switch self {
            case .none: ""
            case .keepAlive: "Connection: keep-alive\r\n"
            case .close: "Connection: close\r\n"
            }
        }
    }

    let status: Status
    let connection: ConnectionHeader
    let includesBody: Bool

    /// The response to a request the parser accepted.
    init(answering request: HTTPRequestHead) {
        status = request.method == .other ? .methodNotAllowed : .ok
        connection = !request.keepAlive ? .close : request.isHTTP10 ? .keepAlive : .none
        includesBody = request.method != .head
    }

    /// The response to a request the parser refused; the connection closes after it.
    init(refusing error: HTTPRequestError) {
        switch error {
        case .badRequest: status = .badRequest
        case .headTooLarge: status = .headTooLarge
        case .transferEncodingNotImplemented: status = .notImplemented
        case .versionNotSupported: status = .versionNotSupported
        }
        connection = .close
        includesBody = true
    }

    var closesConnection: Bool { connection == .close }

    /// This response's bytes.
    var bytes: [UInt8] {
        Self.all[(status.rawValue * ConnectionHeader.allCases.count + connection.rawValue) * 2 + (includesBody ? 1 : 0)]
    }

    /// Every response, built once, at the index ``bytes`` computes.
    private static let all: [[UInt8]] = Status.allCases.flatMap { status in
        ConnectionHeader.allCases.flatMap { connection in
            [false, true].map { includesBody in
                let head =
                    "HTTP/1.1 \(status.line)\r\nServer: reactor\r\n\(status.extraHeaders)"
                    + "Content-Type: text/plain\r\nContent-Length: \(status.body.utf8.count)\r\n\(connection.line)\r\n"
                return Array((includesBody ? head + status.body : head).utf8)
            }
        }
    }
}

/// The bytes read from one connection that are not parsed yet:
///
///     | parsed: 0..<start | unparsed: start..<end | free: end..<capacity |
///
/// The capacity starts small and doubles, up to `limit`, only while a head that does not
/// fit yet is arriving; so a head of `limit` bytes fits, and a longer one is refused
/// once the buffer is full of it.
struct RequestBuffer: ~Copyable {
    private var memory: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    /// Where the search for the current head's end resumes, from `start`: the bytes
    /// before it hold no terminator's first byte.
    private var searched = 0
    private let limit: Int

    init(capacity: Int, limit: Int) {
        precondition(capacity > 0 && capacity <= limit)
        memory = .allocate(byteCount: capacity, alignment: 16)
        self.limit = limit
    }

    deinit { memory.deallocate() }

    /// Where the next read goes.
    var freeSpace: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: memory[end...])
    }

    /// Moves the unparsed bytes to the front, and grows the buffer if they fill it.
    mutating func makeRoom() {
        if start == end {
            start = 0
            end = 0
        } else if start > 0 {
            memmove(memory.baseAddress!, memory.baseAddress! + start, end - start)
            end -= start
            start = 0
        }
        if end == memory.count {
            // A full buffer at the limit was refused with 431 before this read.
            precondition(memory.count < limit, "a full request buffer at the limit is refused, not grown")
            let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: min(memory.count * 2, limit), alignment: 16)
            grown.copyMemory(from: UnsafeRawBufferPointer(rebasing: memory[..<end]))
            memory.deallocate()
            memory = grown
        }
    }

    mutating func didRead(_ count: Int) {
        end += count
    }

    /// Drops up to `count` unparsed bytes (a body being skipped); returns how many it dropped.
    mutating func skip(upTo count: Int) -> Int {
        let skipped = min(count, end - start)
        start += skipped
        return skipped
    }

    /// What the unparsed bytes begin with.
    enum Head {
        /// A whole head, valid until the buffer next changes; it is consumed.
        case complete(UnsafeRawBufferPointer)
        /// The start of a head; more bytes must come.
        case incomplete
        /// The start of a head longer than the limit.
        case tooLarge
    }

    /// Finds the head at the start of the unparsed bytes, after any empty lines.
    mutating func nextHead() -> Head {
        if searched == 0 {
            start += HTTPRequestParser.leadingEmptyLineBytes(in: UnsafeRawBufferPointer(rebasing: memory[start..<end]))
        }
        let unparsed = UnsafeRawBufferPointer(rebasing: memory[start..<end])
        guard let length = HTTPRequestParser.headLength(in: unparsed, searchingFrom: searched) else {
            searched = max(0, unparsed.count - 3)
            return unparsed.count >= limit ? .tooLarge : .incomplete
        }
        start += length
        searched = 0
        return .complete(UnsafeRawBufferPointer(rebasing: unparsed[..<length]))
    }
}

/// The responses waiting to be written, in order.
struct ResponseBuffer: ~Copyable {
    private let memory: UnsafeMutableRawBufferPointer
    private var count = 0

    init(capacity: Int) {
        memory = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { memory.deallocate() }

    var isEmpty: Bool { count == 0 }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: memory[..<count]) }

    func hasRoom(for response: HTTPResponse) -> Bool { memory.count - count >= response.bytes.count }

    /// Copies `response` in; there must be room for it.
    mutating func append(_ response: HTTPResponse) {
        precondition(hasRoom(for: response), "every response fits in an empty buffer")
        let free = UnsafeMutableRawBufferPointer(rebasing: memory[count...])
        count += response.bytes.withUnsafeBytes { bytes in
            free.copyMemory(from: bytes)
            return bytes.count
        }
    }

    mutating func removeAll() {
        count = 0
    }
}
