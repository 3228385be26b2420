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
    /// The request bytes come through ``StreamSocket/chunks``: a head that arrives whole is
    /// parsed where the loop's buffer holds it, and only the start of a head that has not
    /// fully arrived is copied into a buffer of the connection's own, which grows up to
    /// ``maximumHeadLength`` while it does and is freed once the head is complete. A single
    /// response is written from its prebuilt bytes; a response buffer of 4 KiB is made
    /// only for a client that pipelines. So a keep-alive connection that waits for its next
    /// request holds no buffer, and serving a request that arrives in one piece allocates
    /// nothing. When the server closes, it shuts down its writing side and reads, for up
    /// to ``lingerTimeout``, until the client closes too: closing a socket with unread
    /// input resets the connection, and the client could lose the response (RFC 9112 §9.6).
    ///
    /// Run it on the connection's loop (``TCPServer`` and
    /// ``StreamListener/serve(on:maxConnections:_:)`` do).
    ///
    /// - Parameter connection: a connected stream; it is left open.
    /// - Throws: what the connection's `chunks` and `write` throw, for example ``IOError``
    ///   with `Errno.connectionReset`.
    nonisolated(nonsending) public static func handle<Connection: StreamSocket>(_ connection: Connection) async throws {
        var partial = RequestBuffer(limit: maximumHeadLength)
        var responses = ResponseQueue()
        // Bytes of the current request's body not read yet; they are skipped.
        var bodyLeft = 0
        var closing = false
        for try await chunk in connection.chunks {
            // The chunk's bytes stay where they are until the loop asks for the next one.
            let input = chunk.withUnsafeBytes { $0 }
            var offset = 0
            parsing: while !closing {
                if bodyLeft > 0 {
                    bodyLeft -= partial.skip(upTo: bodyLeft)
                    let skipped = min(bodyLeft, input.count - offset)
                    offset += skipped
                    bodyLeft -= skipped
                    if bodyLeft > 0 { break parsing }
                }
                let head: Head
                if partial.isEmpty {
                    head = Head.parse(UnsafeRawBufferPointer(rebasing: input[offset...]), limit: maximumHeadLength)
                    switch head {
                    case .complete(_, let consumed):
                        offset += consumed
                    case .incomplete:
                        partial.append(UnsafeRawBufferPointer(rebasing: input[offset...]))
                        offset = input.count
                        break parsing
                    case .tooLarge:
                        break
                    }
                } else {
                    offset += partial.append(UnsafeRawBufferPointer(rebasing: input[offset...]))
                    head = partial.nextHead()
                    if case .incomplete = head { break parsing }
                }
                let response: HTTPResponse
                switch head {
                case .incomplete:
                    preconditionFailure("an incomplete head waits for more bytes above")
                case .tooLarge:
                    response = HTTPResponse(refusing: .headTooLarge)
                case .complete(let bytes, _):
                    do {
                        let request = try HTTPRequestParser.parse(bytes)
                        response = HTTPResponse(answering: request)
                        bodyLeft = request.contentLength
                    } catch {
                        response = HTTPResponse(refusing: error)
                    }
                }
                if !responses.hasRoom(for: response) {
                    try await responses.write(to: connection)
                }
                responses.append(response)
                closing = response.closesConnection
            }
            try await responses.write(to: connection)
            if closing { break }
            partial.freeIfEmpty()
        }
        // Lingering reads the socket directly: the chunks' iteration must be over first.
        if closing { await lingeringClose(connection) }
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

/// What a connection's unparsed bytes begin with.
enum Head {
    /// A whole head, valid until those bytes change or go back to the loop, and how many
    /// bytes it took with the empty lines before it.
    case complete(UnsafeRawBufferPointer, consumed: Int)
    /// The start of a head; more bytes must come.
    case incomplete
    /// The start of a head longer than the limit.
    case tooLarge

    /// Finds the head at the start of `bytes`, after any empty lines, searching for its end
    /// from `searched`: the bytes before it hold no terminator's first byte.
    static func parse(_ bytes: UnsafeRawBufferPointer, limit: Int, searched: Int = 0) -> Head {
        let skipped = searched == 0 ? HTTPRequestParser.leadingEmptyLineBytes(in: bytes) : 0
        let unparsed = UnsafeRawBufferPointer(rebasing: bytes[skipped...])
        guard let length = HTTPRequestParser.headLength(in: unparsed, searchingFrom: searched) else {
            return unparsed.count >= limit ? .tooLarge : .incomplete
        }
        return .complete(UnsafeRawBufferPointer(rebasing: unparsed[..<length]), consumed: skipped + length)
    }
}

/// The start of a head that has not fully arrived, copied out of the chunks it came in,
/// and the bytes that followed it in the same chunks:
///
///     | parsed: 0..<start | unparsed: start..<end | free: end..<capacity |
///
/// It holds no memory while empty. The capacity starts at 4 KiB and doubles, up to
/// `limit`, only while a head that does not fit yet is arriving; so a head of `limit`
/// bytes fits, and a longer one is refused once the buffer is full of it.
struct RequestBuffer: ~Copyable {
    private var memory = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private var start = 0
    private var end = 0
    /// Where the search for the current head's end resumes, from `start`.
    private var searched = 0
    private let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    deinit { memory.deallocate() }

    var isEmpty: Bool { start == end }

    /// Copies in as much of `bytes` as fits under the limit; returns how much that was.
    @discardableResult
    mutating func append(_ bytes: UnsafeRawBufferPointer) -> Int {
        if start > 0 {
            memmove(memory.baseAddress!, memory.baseAddress! + start, end - start)
            end -= start
            start = 0
        }
        var capacity = max(memory.count, 4 * 1024)
        while capacity - end < bytes.count && capacity < limit { capacity = min(capacity * 2, limit) }
        if capacity > memory.count {
            let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
            if end > 0 { grown.copyMemory(from: UnsafeRawBufferPointer(rebasing: memory[..<end])) }
            memory.deallocate()
            memory = grown
        }
        let count = min(bytes.count, memory.count - end)
        if count > 0 {
            UnsafeMutableRawBufferPointer(rebasing: memory[end..<(end + count)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[..<count]))
        }
        end += count
        return count
    }

    /// Drops up to `count` unparsed bytes (a body being skipped); returns how many it dropped.
    mutating func skip(upTo count: Int) -> Int {
        let skipped = min(count, end - start)
        start += skipped
        return skipped
    }

    /// Finds the head at the start of the unparsed bytes; a complete one is consumed.
    mutating func nextHead() -> Head {
        let head = Head.parse(UnsafeRawBufferPointer(rebasing: memory[start..<end]), limit: limit, searched: searched)
        switch head {
        case .complete(_, let consumed):
            start += consumed
            searched = 0
        case .incomplete:
            // Where the last 3 bytes begin: a terminator may end in the next bytes.
            searched = max(0, end - start - 3)
        case .tooLarge:
            break
        }
        return head
    }

    /// Gives the memory back once nothing is left in it.
    mutating func freeIfEmpty() {
        guard isEmpty, memory.count > 0 else { return }
        memory.deallocate()
        memory = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        (start, end, searched) = (0, 0, 0)
    }
}

/// The responses waiting to be written, in order. One alone is written from its prebuilt
/// bytes; a buffer of 4 KiB, made the first time a second one queues behind it (a client
/// that pipelines), gathers several into one write.
struct ResponseQueue: ~Copyable {
    private static let capacity = 4 * 1024
    private var memory = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private var count = 0
    /// The first response, while it is the only one.
    private var single: HTTPResponse?

    init() {}

    deinit { memory.deallocate() }

    func hasRoom(for response: HTTPResponse) -> Bool {
        single == nil && count == 0 || Self.capacity - count - (single?.bytes.count ?? 0) >= response.bytes.count
    }

    /// Queues `response`; there must be room for it.
    mutating func append(_ response: HTTPResponse) {
        precondition(hasRoom(for: response), "every response fits in an empty queue")
        if single == nil && count == 0 {
            single = response
            return
        }
        if memory.count == 0 { memory = .allocate(byteCount: Self.capacity, alignment: 16) }
        if let first = single {
            copy(first)
            single = nil
        }
        copy(response)
    }

    /// Writes what is queued, and empties the queue.
    nonisolated(nonsending) mutating func write<Connection: StreamSocket>(to connection: Connection) async throws {
        if let first = single {
            single = nil
            try await connection.write(first.bytes)
        } else if count > 0 {
            let bytes = UnsafeRawBufferPointer(rebasing: memory[..<count])
            count = 0
            try await connection.write(bytes)
        }
    }

    private mutating func copy(_ response: HTTPResponse) {
        let free = UnsafeMutableRawBufferPointer(rebasing: memory[count...])
        count += response.bytes.withUnsafeBytes { bytes in
            free.copyMemory(from: bytes)
            return bytes.count
        }
    }
}
