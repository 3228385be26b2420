#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a socket binds or connects: an IPv4 or IPv6 address with a port, a Unix-domain
/// socket path, or a Linux abstract Unix name.
///
/// Addresses read and print in one canonical text form each:
///
/// | family | text |
/// |---|---|
/// | IPv4 | `127.0.0.1:80` |
/// | IPv6 | `[::1]:80`, `[fe80::1%2]:80` (the zone is the interface index) |
/// | Unix path | `unix:/run/app.sock` |
/// | Linux abstract name | `unix:@app` |
/// | unnamed Unix socket | `unix:` |
///
/// ```swift
/// let address = try SocketAddress(parsing: "[2001:db8::1]:443")
/// print(address.host!, address.port!)   // 2001:db8::1 443
/// ```
///
/// Parsing never looks a name up: `localhost:80` is an error here. Resolve names with
/// ``DNS/resolve(host:port:)``. Equality and hashing compare what the C address holds,
/// never its spelling: `[2001:DB8:0::1]:80` equals `[2001:db8::1]:80`.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible, LosslessStringConvertible {
    /// The address families of ``SocketAddress``.
    public enum Family: Hashable, Sendable, CustomStringConvertible {
        /// IPv4, `AF_INET`.
        case ipv4
        /// IPv6, `AF_INET6`.
        case ipv6
        /// Unix-domain sockets, `AF_UNIX`: paths and abstract names.
        case unix

        /// The family's name: `IPv4`, `IPv6` or `Unix`.
        public var description: String {
            switch self {
            case .ipv4: "IPv4"
            case .ipv6: "IPv6"
            case .unix: "Unix"
            }
        }
    }

    // Only the fields the kernel reads are kept, as Swift integers and bytes, so that
    // equality and hashing never see a C struct's padding or `sin_zero`. IP addresses and
    // ports are in host byte order: 127.0.0.1 is 0x7F00_0001, ::1 is 1.
    private enum Storage: Hashable, Sendable {
        case ipv4(address: UInt32, port: UInt16)
        case ipv6(address: UInt128, port: UInt16, flowInfo: UInt32, scopeID: UInt32)
        /// The path's bytes, without a terminating NUL; empty for an unnamed socket.
        case unixPath([UInt8])
        /// The name's bytes, without the leading NUL that marks it abstract.
        case unixAbstract([UInt8])
    }

    private let storage: Storage

    private init(_ storage: Storage) { self.storage = storage }

    /// The unnamed Unix address, `unix:`: the peer of a socketpair, or a peer the kernel
    /// names in a family Reactor does not model.
    static let unnamedUnix = SocketAddress(.unixPath([]))

    // MARK: Making addresses

    /// The IPv4 address `a.b.c.d` with `port`.
    ///
    /// ```swift
    /// let loopback = SocketAddress.ipv4(127, 0, 0, 1, port: 8080)
    /// ```
    public static func ipv4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, port: UInt16) -> SocketAddress {
        SocketAddress(.ipv4(address: UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d), port: port))
    }

    /// Parses an IP address literal, without brackets, and pairs it with `port`.
    ///
    /// Accepts dotted-quad IPv4 (`192.0.2.1`) and any IPv6 text form (`2001:db8::1`,
    /// `::ffff:192.0.2.1`), optionally with a zone after `%`: an interface index
    /// (`fe80::1%2`) or an interface name (`fe80::1%eth0`), which is looked up now.
    ///
    /// - Parameters:
    ///   - ipAddress: the address text. Host names are not resolved.
    ///   - port: the port, in host byte order.
    /// - Throws: ``SocketAddressError/invalidHost(_:)`` if the text is not an IP address;
    ///   ``SocketAddressError/unknownInterface(_:)`` if the zone names no interface.
    public init(ipAddress: String, port: UInt16) throws(SocketAddressError) {
        let text = Substring(ipAddress)
        if text.contains(":") {
            self.init(try Self.parseIPv6(text, port: port))
        } else {
            self.init(try Self.parseIPv4(text, port: port))
        }
    }

    /// The Unix-domain address bound to the file-system path `path`.
    ///
    /// An empty path is the unnamed address: what `getsockname(2)` reports for an
    /// unbound socket. Binding it asks Linux to choose an abstract name (autobind).
    ///
    /// - Parameter path: the path, at most ``maximumUnixPathLength`` bytes of UTF-8.
    /// - Throws: ``SocketAddressError/pathTooLong(byteCount:limit:)`` if the path and its
    ///   terminating NUL do not fit in `sun_path`; ``SocketAddressError/nulInPath`` if it
    ///   contains a NUL byte.
    public static func unix(path: String) throws(SocketAddressError) -> SocketAddress {
        let bytes = Array(path.utf8)
        guard !bytes.contains(0) else { throw .nulInPath }
        guard bytes.count <= maximumUnixPathLength else {
            throw .pathTooLong(byteCount: bytes.count, limit: maximumUnixPathLength)
        }
        return SocketAddress(.unixPath(bytes))
    }

    /// The Linux abstract Unix-domain address `name`: a socket name outside the file
    /// system, gone when the last socket bound to it closes. See `unix(7)`.
    ///
    /// - Parameter name: the name, without the leading NUL, at most
    ///   ``maximumUnixPathLength`` bytes of UTF-8. It may contain NUL bytes.
    /// - Throws: ``SocketAddressError/pathTooLong(byteCount:limit:)`` if the name and its
    ///   leading NUL do not fit in `sun_path`.
    public static func unixAbstract(name: String) throws(SocketAddressError) -> SocketAddress {
        let bytes = Array(name.utf8)
        guard bytes.count <= maximumUnixPathLength else {
            throw .pathTooLong(byteCount: bytes.count, limit: maximumUnixPathLength)
        }
        return SocketAddress(.unixAbstract(bytes))
    }

    /// The most bytes a Unix path or abstract name may have: the size of `sun_path` less
    /// one, for the path's terminating NUL or the abstract name's leading one.
    public static let maximumUnixPathLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    // MARK: Parsing and printing

    /// Parses an address in its canonical text form, reporting what is wrong with it.
    ///
    /// The forms are `a.b.c.d:port`, `[ipv6]:port` (with an optional `%zone` inside the
    /// brackets), `unix:path`, `unix:@abstract-name` and `unix:` (unnamed); see
    /// ``SocketAddress``. The port is decimal, from 0 to 65535.
    ///
    /// - Parameter description: the text to parse.
    /// - Throws: a ``SocketAddressError`` that names the part that is wrong.
    public init(parsing description: String) throws(SocketAddressError) {
        let text = Substring(description)
        if let rest = text.stripping(prefix: "unix:") {
            if let name = rest.stripping(prefix: "@") {
                self = try .unixAbstract(name: String(name))
            } else {
                self = try .unix(path: String(rest))
            }
            return
        }
        if let bracketed = text.stripping(prefix: "[") {
            guard let close = bracketed.firstIndex(of: "]") else { throw .invalidBrackets(description) }
            let afterBracket = bracketed[bracketed.index(after: close)...]
            guard let portText = afterBracket.stripping(prefix: ":") else {
                throw afterBracket.isEmpty ? .missingPort(description) : .invalidBrackets(description)
            }
            let port = try Self.parsePort(portText, in: description)
            self.init(try Self.parseIPv6(bracketed[..<close], port: port))
            return
        }
        guard let colon = text.lastIndex(of: ":") else { throw .missingPort(description) }
        let host = text[..<colon]
        guard !host.contains(":"), !host.contains("]") else { throw .invalidBrackets(description) }
        let port = try Self.parsePort(text[text.index(after: colon)...], in: description)
        self.init(try Self.parseIPv4(host, port: port))
    }

    /// Parses an address in its canonical text form, or returns nil if it is not one.
    /// ``init(parsing:)`` says what is wrong instead.
    ///
    /// - Parameter description: the text to parse.
    public init?(_ description: String) {
        guard let address = try? SocketAddress(parsing: description) else { return nil }
        self = address
    }

    /// The canonical text form, which ``init(parsing:)`` reads back: `127.0.0.1:80`,
    /// `[2001:db8::1]:443` (compressed as RFC 5952 asks), `[fe80::1%2]:80`,
    /// `unix:/run/app.sock`, `unix:@name` or `unix:`.
    ///
    /// Bytes of a Unix path or name that are not UTF-8 print as U+FFFD, and an IPv6 flow
    /// label does not print; those two kinds of address do not read back equal.
    public var description: String {
        switch storage {
        case .ipv4(_, let port): "\(host!):\(port)"
        case .ipv6(_, let port, _, _): "[\(host!)]:\(port)"
        case .unixPath(let bytes): "unix:" + String(decoding: bytes, as: UTF8.self)
        case .unixAbstract(let bytes): "unix:@" + String(decoding: bytes, as: UTF8.self)
        }
    }

    // MARK: Accessors

    /// Which kind of address this is.
    public var family: Family {
        switch storage {
        case .ipv4: .ipv4
        case .ipv6: .ipv6
        case .unixPath, .unixAbstract: .unix
        }
    }

    /// The port of an IP address; nil for a Unix address.
    public var port: UInt16? {
        switch storage {
        case .ipv4(_, let port), .ipv6(_, let port, _, _): port
        case .unixPath, .unixAbstract: nil
        }
    }

    /// The IP address as text, without brackets or port: `192.0.2.1`, `2001:db8::1`, or
    /// `fe80::1%2` when the address has a zone (as its interface index). Nil for a Unix
    /// address. ``init(ipAddress:port:)`` reads it back.
    public var host: String? {
        switch storage {
        case .ipv4(let address, _):
            return "\(address >> 24).\(address >> 16 & 0xFF).\(address >> 8 & 0xFF).\(address & 0xFF)"
        case .ipv6(let address, _, _, let scopeID):
            var raw = in6_addr()
            withUnsafeMutableBytes(of: &raw) { $0.storeBytes(of: address.bigEndian, as: UInt128.self) }
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            let text = buffer.withUnsafeMutableBufferPointer { buffer in
                // inet_ntop fails only for an unknown family or a short buffer; neither can happen here.
                let result = inet_ntop(AF_INET6, &raw, buffer.baseAddress, socklen_t(buffer.count))
                precondition(result != nil, "inet_ntop(AF_INET6) failed: \(errno)")
                return String(cString: buffer.baseAddress!)
            }
            return scopeID == 0 ? text : "\(text)%\(scopeID)"
        case .unixPath, .unixAbstract:
            return nil
        }
    }

    /// The file-system path of a Unix address bound to one; nil for an abstract or
    /// unnamed Unix address and for IP addresses.
    public var path: String? {
        guard case .unixPath(let bytes) = storage, !bytes.isEmpty else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether the address is on the loopback interface: IPv4 `127.0.0.0/8`, IPv6 `::1`,
    /// or an IPv4-mapped loopback address (`::ffff:127.0.0.1`). False for Unix addresses.
    public var isLoopback: Bool {
        switch storage {
        case .ipv4(let address, _):
            return address >> 24 == 127
        case .ipv6(let address, _, _, _):
            let isMappedIPv4 = address >> 32 == 0xFFFF
            return address == 1 || (isMappedIPv4 && address >> 24 & 0xFF == 127)
        case .unixPath, .unixAbstract:
            return false
        }
    }

    // MARK: C socket addresses

    /// Reads an address that the kernel or a C library wrote into a `sockaddr_storage`,
    /// as `accept4(2)`, `getsockname(2)` and `recvfrom(2)` do.
    ///
    /// - Parameters:
    ///   - storage: the address.
    ///   - length: how many of its bytes are the address, as the call reported.
    /// - Throws: ``SocketAddressError/unsupportedFamily(_:)`` for a family other than
    ///   `AF_INET`, `AF_INET6` and `AF_UNIX`; ``SocketAddressError/invalidLength(family:length:)``
    ///   if `length` does not fit the family; ``SocketAddressError/pathTooLong(byteCount:limit:)``
    ///   for a Unix path that fills `sun_path` with no room for its NUL.
    public init(_ storage: sockaddr_storage, length: socklen_t) throws(SocketAddressError) {
        guard Int(length) <= MemoryLayout<sockaddr_storage>.size else {
            throw .invalidLength(family: CInt(storage.ss_family), length: Int(length))
        }
        self = try withUnsafeBytes(of: storage) { raw throws(SocketAddressError) in
            try SocketAddress(bytes: UnsafeRawBufferPointer(rebasing: raw.prefix(Int(length))))
        }
    }

    /// Reads the C socket address that fills `bytes`: the `ai_addr` of an `addrinfo`, or a
    /// `sockaddr_storage` cut to its reported length.
    init(bytes: UnsafeRawBufferPointer) throws(SocketAddressError) {
        let familyOffset = MemoryLayout<sockaddr>.offset(of: \.sa_family)!
        guard bytes.count >= familyOffset + MemoryLayout<sa_family_t>.size else {
            throw .invalidLength(family: AF_UNSPEC, length: bytes.count)
        }
        let family = CInt(bytes.loadUnaligned(fromByteOffset: familyOffset, as: sa_family_t.self))
        switch family {
        case AF_INET:
            guard bytes.count >= MemoryLayout<sockaddr_in>.size else {
                throw .invalidLength(family: family, length: bytes.count)
            }
            let address = bytes.loadUnaligned(as: sockaddr_in.self)
            self.init(.ipv4(address: UInt32(bigEndian: address.sin_addr.s_addr),
                            port: UInt16(bigEndian: address.sin_port)))
        case AF_INET6:
            guard bytes.count >= MemoryLayout<sockaddr_in6>.size else {
                throw .invalidLength(family: family, length: bytes.count)
            }
            let address = bytes.loadUnaligned(as: sockaddr_in6.self)
            let raw = withUnsafeBytes(of: address.sin6_addr) { $0.loadUnaligned(as: UInt128.self) }
            self.init(.ipv6(address: UInt128(bigEndian: raw), port: UInt16(bigEndian: address.sin6_port),
                            flowInfo: UInt32(bigEndian: address.sin6_flowinfo), scopeID: address.sin6_scope_id))
        case AF_UNIX:
            guard bytes.count <= MemoryLayout<sockaddr_un>.size else {
                throw .invalidLength(family: family, length: bytes.count)
            }
            let path = bytes[Self.sunPathOffset...]
            if path.first == 0 {
                self.init(.unixAbstract(Array(path.dropFirst())))
            } else {
                // A path's length may or may not count its NUL: stop at the first one.
                let name = Array(path.prefix { $0 != 0 })
                guard name.count <= Self.maximumUnixPathLength else {
                    throw .pathTooLong(byteCount: name.count, limit: Self.maximumUnixPathLength)
                }
                self.init(.unixPath(name))
            }
        default:
            throw .unsupportedFamily(family)
        }
    }

    /// Calls `body` with this address as a C `sockaddr` and its length, ready for
    /// `bind(2)`, `connect(2)` or `sendto(2)`.
    ///
    /// The length is `sizeof(sockaddr_in)` or `sizeof(sockaddr_in6)` for IP addresses;
    /// `offsetof(sun_path) + strlen(path) + 1` for a Unix path; `offsetof(sun_path) + 1 +
    /// count` for an abstract name (its leading NUL and its bytes, no trailing NUL); and
    /// `offsetof(sun_path)` for the unnamed address.
    ///
    /// - Parameter body: reads the address; the pointer is valid only during the call.
    /// - Returns: what `body` returns.
    /// - Throws: what `body` throws.
    public func withSockAddr<Result, Failure: Error>(
        _ body: (UnsafePointer<sockaddr>, socklen_t) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        var raw = sockaddr_storage()
        let length = withUnsafeMutableBytes(of: &raw) { encode(into: $0) }
        return try withUnsafePointer(to: &raw) { pointer throws(Failure) in
            // sockaddr_storage is large and aligned enough for every sockaddr_* type.
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer throws(Failure) in
                try body(pointer, socklen_t(length))
            }
        }
    }

    /// Writes the C form of this address at the start of `buffer`, zeroed and as large as
    /// a `sockaddr_storage`, and returns its length.
    func encode(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        switch storage {
        case .ipv4(let address, let port):
            var c = sockaddr_in()
            c.sin_family = sa_family_t(AF_INET)
            c.sin_port = port.bigEndian
            c.sin_addr.s_addr = address.bigEndian
            buffer.storeBytes(of: c, as: sockaddr_in.self)
            return MemoryLayout<sockaddr_in>.size
        case .ipv6(let address, let port, let flowInfo, let scopeID):
            var c = sockaddr_in6()
            c.sin6_family = sa_family_t(AF_INET6)
            c.sin6_port = port.bigEndian
            c.sin6_flowinfo = flowInfo.bigEndian
            c.sin6_scope_id = scopeID
            withUnsafeMutableBytes(of: &c.sin6_addr) { $0.storeBytes(of: address.bigEndian, as: UInt128.self) }
            buffer.storeBytes(of: c, as: sockaddr_in6.self)
            return MemoryLayout<sockaddr_in6>.size
        case .unixPath(let bytes):
            encodeUnixFamily(into: buffer)
            buffer[Self.sunPathOffset...].copyBytes(from: bytes)
            // The byte after the path is the buffer's zero: its NUL, counted in the length.
            return bytes.isEmpty ? Self.sunPathOffset : Self.sunPathOffset + bytes.count + 1
        case .unixAbstract(let bytes):
            encodeUnixFamily(into: buffer)
            buffer[(Self.sunPathOffset + 1)...].copyBytes(from: bytes)
            return Self.sunPathOffset + 1 + bytes.count
        }
    }

    private func encodeUnixFamily(into buffer: UnsafeMutableRawBufferPointer) {
        buffer.storeBytes(of: sa_family_t(AF_UNIX), toByteOffset: MemoryLayout<sockaddr_un>.offset(of: \.sun_family)!,
                          as: sa_family_t.self)
    }

    private static let sunPathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!

    // MARK: Parsing helpers

    private static func parseIPv4(_ text: Substring, port: UInt16) throws(SocketAddressError) -> Storage {
        // inet_pton reads a C string: a NUL inside the text would cut it short unseen.
        guard !text.utf8.contains(0) else { throw .invalidHost(String(text)) }
        var address = in_addr()
        // inet_pton(AF_INET) takes exactly four decimal parts, unlike inet_aton's `127.1`.
        guard inet_pton(AF_INET, String(text), &address) == 1 else { throw .invalidHost(String(text)) }
        return .ipv4(address: UInt32(bigEndian: address.s_addr), port: port)
    }

    private static func parseIPv6(_ text: Substring, port: UInt16) throws(SocketAddressError) -> Storage {
        guard !text.utf8.contains(0) else { throw .invalidHost(String(text)) }
        let percent = text.firstIndex(of: "%")
        var raw = in6_addr()
        guard inet_pton(AF_INET6, String(text[..<(percent ?? text.endIndex)]), &raw) == 1 else {
            throw .invalidHost(String(text))
        }
        var scopeID: UInt32 = 0
        if let percent {
            let zone = text[text.index(after: percent)...]
            guard !zone.isEmpty else { throw .invalidHost(String(text)) }
            if zone.allSatisfy(\.isASCIIDigit) {
                guard let index = UInt32(zone) else { throw .invalidHost(String(text)) }
                scopeID = index
            } else {
                scopeID = if_nametoindex(String(zone))
                guard scopeID != 0 else { throw .unknownInterface(String(zone)) }
            }
        }
        let address = withUnsafeBytes(of: raw) { UInt128(bigEndian: $0.loadUnaligned(as: UInt128.self)) }
        return .ipv6(address: address, port: port, flowInfo: 0, scopeID: scopeID)
    }

    private static func parsePort(_ text: Substring, in description: String) throws(SocketAddressError) -> UInt16 {
        guard !text.isEmpty else { throw .missingPort(description) }
        // Digits only: Swift's integer parser would also take a sign (`+80`).
        guard text.allSatisfy(\.isASCIIDigit), text.count <= 5, let port = UInt16(text) else {
            throw .invalidPort(description)
        }
        return port
    }
}

/// What is wrong with a socket address: text that ``SocketAddress/init(parsing:)`` cannot
/// read, a Unix path that does not fit, or a C address of a kind Reactor does not handle.
public enum SocketAddressError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The text (given) has no `:port` after its host.
    case missingPort(String)
    /// The port in the text (given) is not a decimal number from 0 to 65535.
    case invalidPort(String)
    /// The host (given) is not an IP address literal. Names are resolved by
    /// ``DNS/resolve(host:port:)``, never by parsing.
    case invalidHost(String)
    /// The text (given) has an IPv6 address without its brackets, or brackets that do not
    /// close or are not followed by `:port`.
    case invalidBrackets(String)
    /// No network interface has the name (given) used as an IPv6 zone; `if_nametoindex(3)`
    /// found none.
    case unknownInterface(String)
    /// A Unix path or abstract name of `byteCount` bytes, more than the `limit` that fit in
    /// `sun_path` with the NUL that ends a path or starts an abstract name.
    case pathTooLong(byteCount: Int, limit: Int)
    /// A Unix path with a NUL byte in it, which the kernel would read as its end.
    case nulInPath
    /// A C socket address whose family (the `AF_*` value given) is not IPv4, IPv6 or Unix.
    case unsupportedFamily(CInt)
    /// A C socket address whose length does not fit its family.
    case invalidLength(family: CInt, length: Int)

    /// A sentence that says what is wrong, quoting the text or values involved.
    public var description: String {
        switch self {
        case .missingPort(let text): "no port in socket address \"\(text)\""
        case .invalidPort(let text): "the port in \"\(text)\" is not a number from 0 to 65535"
        case .invalidHost(let text): "\"\(text)\" is not an IP address"
        case .invalidBrackets(let text):
            "\"\(text)\" is not [IPv6 address]:port; an IPv6 address needs brackets before its port"
        case .unknownInterface(let name): "no network interface is named \"\(name)\""
        case .pathTooLong(let count, let limit): "the Unix socket path is \(count) bytes; at most \(limit) fit"
        case .nulInPath: "the Unix socket path contains a NUL byte"
        case .unsupportedFamily(let family): "address family \(family) is not IPv4, IPv6 or Unix"
        case .invalidLength(let family, let length):
            "\(length) bytes is not a valid length for address family \(family)"
        }
    }
}

extension Substring {
    /// The rest of the text after `prefix`, or nil if it does not start with `prefix`.
    fileprivate func stripping(prefix: String) -> Substring? {
        hasPrefix(prefix) ? dropFirst(prefix.count) : nil
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isWholeNumber }
}
