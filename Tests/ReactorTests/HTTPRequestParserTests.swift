import Testing

@testable import ReactorServers

/// Parses `text` as one complete head.
private func parse(_ text: String) throws -> HTTPRequestHead {
    try Array(text.utf8).withUnsafeBytes { try HTTPRequestParser.parse($0) }
}

private func headLength(_ text: String, from offset: Int = 0) -> Int? {
    Array(text.utf8).withUnsafeBytes { HTTPRequestParser.headLength(in: $0, searchingFrom: offset) }
}

/// The error parsing `text` throws, or nil.
private func failure(_ text: String) -> HTTPRequestError? {
    do {
        _ = try parse(text)
        return nil
    } catch {
        return error as? HTTPRequestError
    }
}

extension ReactorTests {
    @Suite struct HTTPRequestParserTests {
        @Test("the head ends after the first CRLF CRLF, wherever the search resumes")
        func headEnd() {
            let request = "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next"
            let length = "GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8.count
            #expect(headLength(request) == length)
            #expect(headLength(request, from: length - 4) == length)
            #expect(headLength("GET / HTTP/1.1\r\nHost: a\r\n\r") == nil)
            #expect(headLength("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n") == nil)
            #expect(headLength("\r\n\r\n") == 4)
            #expect(headLength("") == nil)
            // After a miss, resuming three bytes before the old end finds a split terminator.
            let partial = "GET / HTTP/1.1\r\nHost: a\r\n\r"
            #expect(headLength(partial + "\n", from: partial.utf8.count - 3) == partial.utf8.count + 1)
        }

        @Test("empty lines before a request line are skipped")
        func leadingEmptyLines() {
            let skipped = Array("\r\n\r\nGET".utf8).withUnsafeBytes { HTTPRequestParser.leadingEmptyLineBytes(in: $0) }
            #expect(skipped == 4)
            let none = Array("\rGET".utf8).withUnsafeBytes { HTTPRequestParser.leadingEmptyLineBytes(in: $0) }
            #expect(none == 0)
        }

        @Test("a GET over HTTP/1.1 keeps the connection alive by default")
        func plainGet() throws {
            let head = try parse("GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n")
            #expect(head == HTTPRequestHead(method: .get, isHTTP10: false, keepAlive: true, contentLength: 0))
        }

        @Test("methods are case-sensitive: GET and HEAD are served, the rest are other")
        func methods() throws {
            #expect(try parse("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").method == .head)
            #expect(try parse("get / HTTP/1.1\r\nHost: a\r\n\r\n").method == .other)
            #expect(try parse("DELETE / HTTP/1.1\r\nHost: a\r\n\r\n").method == .other)
        }

        @Test("header names and Connection options are case-insensitive; close wins in a list")
        func connectionHeader() throws {
            #expect(try parse("GET / HTTP/1.1\r\nhOsT: a\r\nCONNECTION: Close\r\n\r\n").keepAlive == false)
            #expect(try parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade ,\tclose \r\n\r\n").keepAlive == false)
            #expect(try parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n").keepAlive == true)
            #expect(try parse("GET / HTTP/1.1\r\nHost: a\r\nX-Connection: close\r\n\r\n").keepAlive == true)
            #expect(try parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n").keepAlive == true)
        }

        @Test("HTTP/1.0 closes unless it asks for keep-alive, and needs no Host")
        func http10() throws {
            #expect(try parse("GET / HTTP/1.0\r\n\r\n") == HTTPRequestHead(method: .get, isHTTP10: true, keepAlive: false, contentLength: 0))
            #expect(try parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keepAlive == true)
            #expect(try parse("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").keepAlive == false)
            // A later minor version is served as 1.1.
            #expect(try parse("GET / HTTP/1.2\r\nHost: a\r\n\r\n").isHTTP10 == false)
        }

        @Test("Content-Length: digits only, repeated only with the same value, no overflow")
        func contentLength() throws {
            #expect(try parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n").contentLength == 42)
            #expect(try parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:7\r\ncontent-length: 7\r\n\r\n").contentLength == 7)
            for value in ["-1", "+1", "1 2", "1,1", "", "0x10", "99999999999999999999"] {
                #expect(failure("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(value)\r\n\r\n") == .badRequest, "\(value)")
            }
            #expect(failure("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n") == .badRequest)
        }

        @Test("a Transfer-Encoding is not implemented")
        func transferEncoding() {
            #expect(failure("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n") == .transferEncodingNotImplemented)
        }

        @Test("versions: 1.x is served, other majors are not supported, anything else is malformed")
        func versions() {
            #expect(failure("GET / HTTP/2.0\r\nHost: a\r\n\r\n") == .versionNotSupported)
            #expect(failure("GET / HTTP/0.9\r\nHost: a\r\n\r\n") == .versionNotSupported)
            for version in ["http/1.1", "HTTP/1.1x", "HTTP/11", "HTTP/1", "HTTP/1.a", ""] {
                #expect(failure("GET / \(version)\r\nHost: a\r\n\r\n") == .badRequest, "\(version)")
            }
        }

        @Test("HTTP/1.1 needs exactly one Host")
        func host() {
            #expect(failure("GET / HTTP/1.1\r\n\r\n") == .badRequest)
            #expect(failure("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == .badRequest)
            #expect(failure("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n") == .badRequest)
        }

        @Test("what could smuggle a request is refused")
        func malformed() {
            let heads = [
                "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",  // trailing space
                " GET / HTTP/1.1\r\nHost: a\r\n\r\n",  // leading space
                "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",  // double space
                "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",  // space in the target
                "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n",  // tab as separator
                "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",  // not a token
                "GET / HTTP/1.1\r\nHost : a\r\n\r\n",  // space before the colon
                "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",  // obsolete line folding
                "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",  // bare LF
                "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",  // bare CR
                "GET / HTTP/1.1\r\nHost: a\u{7F}\r\n\r\n",  // DEL in a value
                "GET / HTTP/1.1\r\nHost: a\r\n: empty name\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: a\r\nNo colon\r\n\r\n",
                "\r\n\r\n",
            ]
            for head in heads {
                #expect(failure(head) == .badRequest, "\(head.debugDescription)")
            }
        }

        @Test("values may hold tabs, obs-text and trailing whitespace, which is trimmed")
        func lenientValues() throws {
            let head = try parse("GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: \t tests\u{E9} v1 \t\r\nContent-Length: 3 \r\n\r\n")
            #expect(head.contentLength == 3)
        }
    }
}
