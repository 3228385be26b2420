import Glibc
import Testing

@testable import Reactor

extension ReactorTests {
    @Suite struct SocketAddressTests {
        /// Copies `address`'s C form into a `sockaddr_storage`, with the length it reported.
        private func cForm(of address: SocketAddress) -> (sockaddr_storage, socklen_t) {
            var storage = sockaddr_storage()
            let length = address.withSockAddr { pointer, length in
                let bytes = UnsafeRawBufferPointer(start: pointer, count: Int(length))
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) }
                return length
            }
            return (storage, length)
        }

        /// The bytes of `sun_path` in `storage`, up to `length`.
        private func sunPath(_ storage: sockaddr_storage, length: socklen_t) -> [UInt8] {
            let offset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
            return withUnsafeBytes(of: storage) { Array($0[offset..<Int(length)]) }
        }

        @Test("canonical text reads back to an equal address that prints the same", arguments: [
            "127.0.0.1:80", "0.0.0.0:0", "255.255.255.255:65535", "192.0.2.1:8080",
            "[::1]:80", "[::]:0", "[2001:db8::1]:443", "[::ffff:192.0.2.1]:8080", "[fe80::1%2]:80",
            "[2001:db8:0:1:1:1:1:1]:1",
            "unix:/tmp/reactor.sock", "unix:relative/path", "unix:@reactor-abstract", "unix:@", "unix:",
        ])
        func canonicalRoundTrip(text: String) throws {
            let address = try SocketAddress(parsing: text)
            #expect(address.description == text)
            #expect(SocketAddress(address.description) == address)
        }

        @Test("IPv6 prints compressed as RFC 5952 asks", arguments: [
            ("[2001:DB8:0:0:0:0:0:1]:80", "[2001:db8::1]:80"),
            ("[2001:db8:0:0:1:0:0:1]:80", "[2001:db8::1:0:0:1]:80"),
            ("[2001:0db8:0000:0000:0000:ff00:0042:8329]:80", "[2001:db8::ff00:42:8329]:80"),
            ("[0:0:0:0:0:0:0:1]:80", "[::1]:80"),
            ("[::ffff:c000:0201]:80", "[::ffff:192.0.2.1]:80"),
            ("127.0.0.1:080", "127.0.0.1:80"),
        ])
        func canonicalPrinting(input: String, canonical: String) throws {
            let address = try SocketAddress(parsing: input)
            #expect(address.description == canonical)
            #expect(try SocketAddress(parsing: canonical) == address)
        }

        @Test("an IPv6 zone may name an interface, and prints as its index")
        func zoneByName() throws {
            let index = if_nametoindex("lo")
            try #require(index != 0)
            let address = try SocketAddress(parsing: "[fe80::1%lo]:80")
            #expect(address.description == "[fe80::1%\(index)]:80")
            #expect(address.host == "fe80::1%\(index)")
            #expect(address == (try SocketAddress(ipAddress: "fe80::1%\(index)", port: 80)))
            #expect(address != (try SocketAddress(ipAddress: "fe80::1", port: 80)))
        }

        @Test("invalid text fails with the error that names what is wrong", arguments: [
            ("127.0.0.1", SocketAddressError.missingPort("127.0.0.1")),
            ("127.0.0.1:", .missingPort("127.0.0.1:")),
            ("", .missingPort("")),
            ("[::1]", .missingPort("[::1]")),
            ("[::1]:", .missingPort("[::1]:")),
            ("127.0.0.1:65536", .invalidPort("127.0.0.1:65536")),
            ("127.0.0.1:100000", .invalidPort("127.0.0.1:100000")),
            ("127.0.0.1:http", .invalidPort("127.0.0.1:http")),
            ("127.0.0.1:+80", .invalidPort("127.0.0.1:+80")),
            ("127.0.0.1:-1", .invalidPort("127.0.0.1:-1")),
            ("[::1]:99999", .invalidPort("[::1]:99999")),
            ("[::1:80", .invalidBrackets("[::1:80")),
            ("::1:80", .invalidBrackets("::1:80")),
            ("::1]:80", .invalidBrackets("::1]:80")),
            ("[::1]80", .invalidBrackets("[::1]80")),
            ("[127.0.0.1]:80", .invalidHost("127.0.0.1")),
            ("[::1%]:80", .invalidHost("::1%")),
            ("[::1%99999999999]:80", .invalidHost("::1%99999999999")),
            ("[1:2:3:4:5:6:7:8:9]:80", .invalidHost("1:2:3:4:5:6:7:8:9")),
            ("localhost:80", .invalidHost("localhost")),
            ("256.0.0.1:80", .invalidHost("256.0.0.1")),
            ("127.1:80", .invalidHost("127.1")),
            (":80", .invalidHost("")),
            ("127.0.0.1\0:80", .invalidHost("127.0.0.1\0")),
            ("[fe80::1%nonexistent0]:80", .unknownInterface("nonexistent0")),
            ("unix:/tmp/a\0b", .nulInPath),
            ("unix:/" + String(repeating: "a", count: 200), .pathTooLong(byteCount: 201, limit: 107)),
            ("unix:@" + String(repeating: "a", count: 108), .pathTooLong(byteCount: 108, limit: 107)),
        ])
        func invalidText(input: String, error: SocketAddressError) {
            #expect(throws: error) { try SocketAddress(parsing: input) }
            #expect(SocketAddress(input) == nil)
        }

        @Test("a Unix path or abstract name may fill sun_path but for its NUL")
        func unixLengthLimit() throws {
            #expect(SocketAddress.maximumUnixPathLength == 107)
            let longest = "/" + String(repeating: "p", count: 106)
            let path = try SocketAddress.unix(path: longest)
            #expect(path.path == longest)
            #expect(throws: SocketAddressError.pathTooLong(byteCount: 108, limit: 107)) {
                try SocketAddress.unix(path: longest + "p")
            }
            let name = String(repeating: "n", count: 107)
            #expect(try SocketAddress.unixAbstract(name: name).description == "unix:@" + name)
            #expect(throws: SocketAddressError.pathTooLong(byteCount: 108, limit: 107)) {
                try SocketAddress.unixAbstract(name: name + "n")
            }
        }

        @Test("the accessors describe each family")
        func accessors() throws {
            let ipv4 = SocketAddress.ipv4(192, 0, 2, 1, port: 8080)
            #expect(ipv4 == (try SocketAddress(parsing: "192.0.2.1:8080")))
            #expect(ipv4.family == .ipv4)
            #expect(ipv4.port == 8080)
            #expect(ipv4.host == "192.0.2.1")
            #expect(ipv4.path == nil)

            let ipv6 = try SocketAddress(ipAddress: "2001:db8::1", port: 443)
            #expect(ipv6.family == .ipv6)
            #expect(ipv6.port == 443)
            #expect(ipv6.host == "2001:db8::1")

            let path = try SocketAddress.unix(path: "/run/app.sock")
            #expect(path.family == .unix)
            #expect(path.port == nil)
            #expect(path.host == nil)
            #expect(path.path == "/run/app.sock")

            let abstract = try SocketAddress.unixAbstract(name: "app")
            #expect(abstract.family == .unix)
            #expect(abstract.path == nil)
            #expect(abstract.description == "unix:@app")
            #expect(try SocketAddress.unix(path: "").path == nil)
        }

        @Test("loopback addresses are recognised in every IP form", arguments: [
            ("127.0.0.1:1", true), ("127.255.0.9:1", true), ("128.0.0.1:1", false), ("0.0.0.0:1", false),
            ("[::1]:1", true), ("[::]:1", false), ("[::2]:1", false), ("[::ffff:127.0.0.1]:1", true),
            ("[::ffff:10.0.0.1]:1", false), ("[::127.0.0.1]:1", false), ("unix:/tmp/s", false), ("unix:@s", false),
        ])
        func loopback(text: String, isLoopback: Bool) throws {
            #expect(try SocketAddress(parsing: text).isLoopback == isLoopback)
        }

        @Test("equal addresses hash alike, whatever spelling they were parsed from")
        func hashing() throws {
            let spellings = ["[2001:db8::1]:80", "[2001:DB8:0:0::1]:80", "[2001:0db8:0000:0000:0000:0000:0000:0001]:80"]
            let addresses = try spellings.map { try SocketAddress(parsing: $0) }
            #expect(Set(addresses).count == 1)
            #expect(addresses.allSatisfy { $0.hashValue == addresses[0].hashValue })
            let distinct = try [
                "127.0.0.1:80", "127.0.0.1:81", "127.0.0.2:80", "[::ffff:127.0.0.1]:80", "[::1]:80",
                "[fe80::1]:80", "[fe80::1%1]:80", "unix:/a", "unix:@a", "unix:",
            ].map { try SocketAddress(parsing: $0) }
            #expect(Set(distinct).count == distinct.count)
            // A C form's padding and sin_zero never reach equality: decode one with junk in them.
            var (storage, length) = cForm(of: addresses[0])
            withUnsafeMutableBytes(of: &storage) { bytes in
                for index in Int(length)..<bytes.count { bytes[index] = 0xA5 }
            }
            #expect(try SocketAddress(storage, length: length) == addresses[0])
        }

        @Test("every form survives a trip through sockaddr_storage, with the length the kernel takes", arguments: [
            ("127.0.0.1:80", 16), ("[2001:db8::1]:443", 28), ("[fe80::1%7]:80", 28),
            ("unix:/tmp/reactor.sock", 2 + 17 + 1), ("unix:@reactor", 2 + 1 + 7), ("unix:", 2),
        ])
        func storageRoundTrip(text: String, expectedLength: Int) throws {
            let address = try SocketAddress(parsing: text)
            let (storage, length) = cForm(of: address)
            #expect(Int(length) == expectedLength)
            #expect(try SocketAddress(storage, length: length) == address)
        }

        @Test("the C form carries port and address in network byte order")
        func cLayout() throws {
            let (ipv4, _) = cForm(of: .ipv4(127, 0, 0, 1, port: 0x1F90))
            let inet = withUnsafeBytes(of: ipv4) { $0.loadUnaligned(as: sockaddr_in.self) }
            #expect(CInt(inet.sin_family) == AF_INET)
            #expect(inet.sin_port == UInt16(0x1F90).bigEndian)
            #expect(inet.sin_addr.s_addr == UInt32(0x7F00_0001).bigEndian)

            let (ipv6, _) = cForm(of: try SocketAddress(parsing: "[fe80::1%7]:80"))
            let inet6 = withUnsafeBytes(of: ipv6) { $0.loadUnaligned(as: sockaddr_in6.self) }
            #expect(CInt(inet6.sin6_family) == AF_INET6)
            #expect(inet6.sin6_port == UInt16(80).bigEndian)
            #expect(inet6.sin6_scope_id == 7)
            let bytes = withUnsafeBytes(of: inet6.sin6_addr) { Array($0) }
            #expect(bytes == [0xFE, 0x80] + Array(repeating: 0, count: 13) + [1])
        }

        @Test("a Unix path ends in a NUL the length counts; an abstract name starts with one and has none after")
        func unixLayout() throws {
            let (path, pathLength) = cForm(of: try .unix(path: "/s"))
            #expect(sunPath(path, length: pathLength) == Array("/s".utf8) + [0])
            let (abstract, abstractLength) = cForm(of: try .unixAbstract(name: "a\0b"))
            #expect(sunPath(abstract, length: abstractLength) == [0] + Array("a\0b".utf8))
            #expect(try SocketAddress(abstract, length: abstractLength) == (try .unixAbstract(name: "a\0b")))
        }

        @Test("a path whose length leaves out its NUL decodes the same")
        func pathWithoutNUL() throws {
            let address = try SocketAddress.unix(path: "/tmp/x")
            let (storage, length) = cForm(of: address)
            #expect(try SocketAddress(storage, length: length - 1) == address)
        }

        @Test("addresses the kernel reports decode to what was bound")
        func kernelAddresses() throws {
            let inet = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            try #require(inet >= 0)
            defer { close(inet) }
            let loopback = SocketAddress.ipv4(127, 0, 0, 1, port: 0)
            #expect(loopback.withSockAddr { bind(inet, $0, $1) } == 0)
            let bound = try boundAddress(of: inet)
            #expect(bound.host == "127.0.0.1")
            #expect(bound.port != 0)

            let unix = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            try #require(unix >= 0)
            defer { close(unix) }
            let unique = "reactor-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            let name = try SocketAddress.unixAbstract(name: unique)
            #expect(name.withSockAddr { bind(unix, $0, $1) } == 0)
            #expect(try boundAddress(of: unix) == name)
        }

        private func boundAddress(of fd: CInt) throws -> SocketAddress {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let result = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            try #require(result == 0)
            return try SocketAddress(storage, length: length)
        }

        @Test("a C address of another family or a wrong length is refused")
        func invalidStorage() throws {
            var storage = sockaddr_storage()
            storage.ss_family = sa_family_t(AF_PACKET)
            #expect(throws: SocketAddressError.unsupportedFamily(AF_PACKET)) {
                try SocketAddress(storage, length: socklen_t(MemoryLayout<sockaddr_storage>.size))
            }
            storage.ss_family = sa_family_t(AF_INET)
            #expect(throws: SocketAddressError.invalidLength(family: AF_INET, length: 8)) {
                try SocketAddress(storage, length: 8)
            }
            storage.ss_family = sa_family_t(AF_INET6)
            #expect(throws: SocketAddressError.invalidLength(family: AF_INET6, length: 16)) {
                try SocketAddress(storage, length: 16)
            }
            storage.ss_family = sa_family_t(AF_UNIX)
            #expect(throws: SocketAddressError.invalidLength(family: AF_UNIX, length: 111)) {
                try SocketAddress(storage, length: 111)
            }
            #expect(throws: SocketAddressError.invalidLength(family: AF_UNSPEC, length: 1)) {
                try SocketAddress(storage, length: 1)
            }
            #expect(throws: SocketAddressError.invalidLength(family: AF_UNIX, length: 129)) {
                try SocketAddress(storage, length: 129)
            }
            // A path that fills sun_path leaves no room for its NUL.
            withUnsafeMutableBytes(of: &storage) { bytes in
                for index in 2..<110 { bytes[index] = UInt8(ascii: "p") }
            }
            #expect(throws: SocketAddressError.pathTooLong(byteCount: 108, limit: 107)) {
                try SocketAddress(storage, length: 110)
            }
        }

        @Test("errors say what is wrong")
        func errorDescriptions() {
            #expect(SocketAddressError.missingPort("127.0.0.1").description
                == "no port in socket address \"127.0.0.1\"")
            #expect(SocketAddressError.pathTooLong(byteCount: 200, limit: 107).description
                == "the Unix socket path is 200 bytes; at most 107 fit")
            #expect(SocketAddressError.invalidBrackets("::1:80").description.contains("needs brackets"))
        }
    }
}
