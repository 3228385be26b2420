#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What ``HTTPServer`` needs to know of a request: its head, reduced to five facts.
struct HTTPRequestHead: Equatable {
    /// The methods this server tells apart.
    enum Method: Equatable {
        case get
        case head
        /// Any other method, well-formed but not served.
        case other
    }

    var method: Method
    /// HTTP/1.0: a response names the connection's fate, and it closes unless asked not to.
    var isHTTP10: Bool
    /// Whether the connection stays open after the response.
    var keepAlive: Bool
    /// The length of the body that follows the head (from `Content-Length`); 0 when none.
    var contentLength: Int
}

/// Why a request is refused. Each case is answered with its status, then the connection
/// closes: after any of them the server cannot tell where the next request would start.
enum HTTPRequestError: Error, Equatable {
    /// 400: the request line or a header line breaks RFC 9112's grammar, or an
    /// HTTP/1.1 request does not have exactly one `Host`.
    case badRequest
    /// 431: the head is longer than ``HTTPRequestParser/maximumHeadLength``.
    case headTooLarge
    /// 501: the body has a `Transfer-Encoding`, which this server does not decode.
    case transferEncodingNotImplemented
    /// 505: a major version other than 1.
    case versionNotSupported
}

/// A request-head parser over raw bytes (RFC 9112 §2–§7).
///
/// A head is the request line and the header lines, each ended by CRLF, then an empty
/// line: it ends at the first `\r\n\r\n`. The parser works in place on the caller's
/// buffer, keeps nothing and allocates nothing.
///
/// It is strict where leniency lets one request be read as two (RFC 9112 §11.2): a bare
/// CR or LF, whitespace before a header's colon, a folded header line, a malformed or
/// repeated `Content-Length`, and any `Transfer-Encoding` are all refused.
enum HTTPRequestParser {
    /// The longest head accepted, `\r\n\r\n` included: 64 KiB.
    static let maximumHeadLength = 64 * 1024

    private static let cr: UInt8 = 0x0D
    private static let lf: UInt8 = 0x0A

    /// The length of the head at the start of `bytes`, through its `\r\n\r\n`; nil while
    /// the terminator has not arrived.
    ///
    /// - Parameters:
    ///   - bytes: the buffered bytes, starting at the head.
    ///   - offset: where to start looking; a terminator cannot start before it. After a
    ///     miss, `bytes.count - 3` is a safe place to resume once more bytes arrive.
    static func headLength(in bytes: UnsafeRawBufferPointer, searchingFrom offset: Int) -> Int? {
        guard let base = bytes.baseAddress else { return nil }
        var index = max(0, offset)
        while index + 4 <= bytes.count {
            // memchr finds the next CR; only those with room for "\n\r\n" after them count.
            guard let found = memchr(base + index, CInt(cr), bytes.count - 3 - index) else { return nil }
            let position = base.distance(to: UnsafeRawPointer(found))
            if bytes[position + 1] == lf, bytes[position + 2] == cr, bytes[position + 3] == lf {
                return position + 4
            }
            index = position + 1
        }
        return nil
    }

    /// How many CRLF pairs start `bytes`: empty lines a client may send before a request
    /// line (RFC 9112 §2.2), which a server skips.
    static func leadingEmptyLineBytes(in bytes: UnsafeRawBufferPointer) -> Int {
        var index = 0
        while index + 2 <= bytes.count, bytes[index] == cr, bytes[index + 1] == lf { index += 2 }
        return index
    }

    /// Parses a complete head, as ``headLength(in:searchingFrom:)`` delimits it.
    ///
    /// - Parameter head: the head, ending in `\r\n\r\n`.
    /// - Throws: ``HTTPRequestError`` when the request must be refused.
    static func parse(_ head: UnsafeRawBufferPointer) throws(HTTPRequestError) -> HTTPRequestHead {
        precondition(head.count >= 4 && head[head.count - 4] == cr && head[head.count - 1] == lf,
            "a head ends with its terminator")
        let requestLineEnd = lineEnd(in: head, from: 0)
        var request = try parseRequestLine(UnsafeRawBufferPointer(rebasing: head[..<requestLineEnd]))

        var hostCount = 0
        var contentLength: Int?
        var hasTransferEncoding = false
        var asksToClose = false
        var asksToKeepAlive = false
        var lineStart = requestLineEnd + 2
        // The last two bytes are the empty line's CRLF.
        while lineStart < head.count - 2 {
            let end = lineEnd(in: head, from: lineStart)
            let (name, value) = try splitField(UnsafeRawBufferPointer(rebasing: head[lineStart..<end]))
            if equalsIgnoringCase(name, "host") {
                hostCount += 1
            } else if equalsIgnoringCase(name, "content-length") {
                let length = try parseContentLength(value)
                if let earlier = contentLength, earlier != length { throw .badRequest }
                contentLength = length
            } else if equalsIgnoringCase(name, "transfer-encoding") {
                hasTransferEncoding = true
            } else if equalsIgnoringCase(name, "connection") {
                forEachToken(in: value) { token in
                    if equalsIgnoringCase(token, "close") { asksToClose = true }
                    if equalsIgnoringCase(token, "keep-alive") { asksToKeepAlive = true }
                }
            }
            lineStart = end + 2
        }

        // RFC 9112 §3.2: a server responds 400 to an HTTP/1.1 request without a Host,
        // and to any request with more than one.
        if hostCount > 1 || (!request.isHTTP10 && hostCount == 0) { throw .badRequest }
        if hasTransferEncoding { throw .transferEncodingNotImplemented }
        request.contentLength = contentLength ?? 0
        request.keepAlive = !asksToClose && (!request.isHTTP10 || asksToKeepAlive)
        return request
    }

    /// The index of the CR of the first CRLF at or after `start`. Every line of a head
    /// has one, the empty line's included, so the search always ends; a CR or LF that is
    /// not part of a CRLF stays in the line, where the grammar refuses it.
    private static func lineEnd(in head: UnsafeRawBufferPointer, from start: Int) -> Int {
        var index = start
        while !(head[index] == cr && head[index + 1] == lf) { index += 1 }
        return index
    }

    /// `method SP request-target SP HTTP-version`, single spaces (RFC 9112 §3).
    private static func parseRequestLine(_ line: UnsafeRawBufferPointer) throws(HTTPRequestError) -> HTTPRequestHead {
        var methodEnd = 0
        while methodEnd < line.count, isTokenByte(line[methodEnd]) { methodEnd += 1 }
        guard methodEnd > 0, methodEnd < line.count, line[methodEnd] == 0x20 else { throw .badRequest }

        // The target: visible ASCII, no spaces (RFC 9112 §3.2).
        let targetStart = methodEnd + 1
        var targetEnd = targetStart
        while targetEnd < line.count, (0x21...0x7E).contains(line[targetEnd]) { targetEnd += 1 }
        guard targetEnd > targetStart, targetEnd < line.count, line[targetEnd] == 0x20 else { throw .badRequest }

        // "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3).
        let version = UnsafeRawBufferPointer(rebasing: line[(targetEnd + 1)...])
        guard version.count == 8, startsWith(version, "HTTP/"), isDigit(version[5]), version[6] == 0x2E,
            isDigit(version[7])
        else { throw .badRequest }
        guard version[5] == 0x31 else { throw .versionNotSupported }

        let method = UnsafeRawBufferPointer(rebasing: line[..<methodEnd])
        // Method names are case-sensitive (RFC 9110 §9.1): "get" is not GET.
        let kind: HTTPRequestHead.Method =
            equals(method, "GET") ? .get : equals(method, "HEAD") ? .head : .other
        // Any minor version above 0 is served as 1.1 (RFC 9110 §2.5).
        return HTTPRequestHead(method: kind, isHTTP10: version[7] == 0x30, keepAlive: true, contentLength: 0)
    }

    /// `field-name ":" OWS field-value OWS` (RFC 9112 §5), with the value's surrounding
    /// whitespace trimmed.
    private static func splitField(
        _ line: UnsafeRawBufferPointer
    ) throws(HTTPRequestError) -> (name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        var colon = 0
        while colon < line.count, isTokenByte(line[colon]) { colon += 1 }
        // Also refuses a folded line (RFC 9112 §5.2), which starts with whitespace.
        guard colon > 0, colon < line.count, line[colon] == 0x3A else { throw .badRequest }
        var start = colon + 1
        var end = line.count
        while start < end, isWhitespace(line[start]) { start += 1 }
        while end > start, isWhitespace(line[end - 1]) { end -= 1 }
        for index in start..<end where !isFieldValueByte(line[index]) { throw .badRequest }
        return (UnsafeRawBufferPointer(rebasing: line[..<colon]), UnsafeRawBufferPointer(rebasing: line[start..<end]))
    }

    /// `Content-Length = 1*DIGIT` (RFC 9110 §8.6); a list, a sign or an overflow is refused.
    private static func parseContentLength(_ value: UnsafeRawBufferPointer) throws(HTTPRequestError) -> Int {
        guard !value.isEmpty else { throw .badRequest }
        var length = 0
        for byte in value {
            guard isDigit(byte) else { throw .badRequest }
            let (shifted, overflowA) = length.multipliedReportingOverflow(by: 10)
            let (sum, overflowB) = shifted.addingReportingOverflow(Int(byte - 0x30))
            guard !overflowA, !overflowB else { throw .badRequest }
            length = sum
        }
        return length
    }

    /// Calls `body` with each element of a comma-separated list, trimmed of whitespace.
    private static func forEachToken(in value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        while start <= value.count {
            var end = start
            while end < value.count, value[end] != 0x2C { end += 1 }
            var tokenStart = start
            var tokenEnd = end
            while tokenStart < tokenEnd, isWhitespace(value[tokenStart]) { tokenStart += 1 }
            while tokenEnd > tokenStart, isWhitespace(value[tokenEnd - 1]) { tokenEnd -= 1 }
            body(UnsafeRawBufferPointer(rebasing: value[tokenStart..<tokenEnd]))
            start = end + 1
        }
    }

    // MARK: Bytes

    /// `tchar` (RFC 9110 §5.6.2): the characters of methods and header names.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: true
        default: false
        }
    }

    /// A field value's bytes: visible ASCII, space, tab and obs-text (RFC 9110 §5.5);
    /// never a control character, CR and LF included.
    private static func isFieldValueByte(_ byte: UInt8) -> Bool {
        byte == 0x09 || (byte >= 0x20 && byte != 0x7F)
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

    private static func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }

    /// Whether `bytes` spell `literal`, with ASCII letters compared regardless of case.
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        guard bytes.count == literal.utf8CodeUnitCount else { return false }
        let expected = literal.utf8Start
        for index in 0..<bytes.count where lowercased(bytes[index]) != lowercased(expected[index]) {
            return false
        }
        return true
    }

    private static func equals(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        bytes.count == literal.utf8CodeUnitCount && memcmp(bytes.baseAddress!, literal.utf8Start, bytes.count) == 0
    }

    private static func startsWith(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        bytes.count >= literal.utf8CodeUnitCount
            && memcmp(bytes.baseAddress!, literal.utf8Start, literal.utf8CodeUnitCount) == 0
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        (0x41...0x5A).contains(byte) ? byte + 0x20 : byte
    }
}
