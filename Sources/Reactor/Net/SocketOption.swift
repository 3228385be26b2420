#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A socket option with a typed value: `try stream.setOption(.noDelay, to: true)`.
///
/// The corresponding C functions are `setsockopt(2)` and `getsockopt(2)`.
public struct SocketOption<Value: Sendable>: Sendable, CustomStringConvertible {
    enum Encoding: Sendable {
        /// A C `int` that is 0 or 1.
        case flag
        /// A C `int`.
        case integer
        /// A `struct linger`, as `Duration?` (nil: off).
        case linger
    }

    let level: CInt
    let name: CInt
    let encoding: Encoding
    /// The C name, for errors and descriptions.
    public let description: String

    init(level: CInt, name: CInt, _ encoding: Encoding, _ description: String) {
        self.level = level
        self.name = name
        self.encoding = encoding
        self.description = description
    }
}

extension SocketOption where Value == Bool {
    /// Sends small writes at once instead of coalescing them (Nagle off), `TCP_NODELAY`.
    public static var noDelay: Self { Self(level: CInt(IPPROTO_TCP), name: TCP_NODELAY, .flag, "TCP_NODELAY") }
    /// Probes an idle connection to notice a dead peer, `SO_KEEPALIVE`.
    public static var keepAlive: Self { Self(level: SOL_SOCKET, name: SO_KEEPALIVE, .flag, "SO_KEEPALIVE") }
    /// Lets a listener bind a port that connections in `TIME_WAIT` still hold, `SO_REUSEADDR`.
    public static var reuseAddress: Self { Self(level: SOL_SOCKET, name: SO_REUSEADDR, .flag, "SO_REUSEADDR") }
    /// Lets several sockets bind the same address and port, the kernel spreading
    /// connections or datagrams among them, `SO_REUSEPORT`.
    public static var reusePort: Self { Self(level: SOL_SOCKET, name: SO_REUSEPORT, .flag, "SO_REUSEPORT") }
    /// Keeps an IPv6 socket to IPv6 alone, instead of also taking IPv4 as mapped
    /// addresses, `IPV6_V6ONLY`. Reactor sets it on IPv6 listeners, so that an IPv4 and
    /// an IPv6 listener can share a port.
    public static var ipv6Only: Self { Self(level: CInt(IPPROTO_IPV6), name: IPV6_V6ONLY, .flag, "IPV6_V6ONLY") }
    /// Lets a datagram socket send to a broadcast address, `SO_BROADCAST`.
    public static var broadcast: Self { Self(level: SOL_SOCKET, name: SO_BROADCAST, .flag, "SO_BROADCAST") }
}

extension SocketOption where Value == Int {
    /// The kernel's receive buffer in bytes, `SO_RCVBUF`. Linux doubles what is set and
    /// reports the doubled size.
    public static var receiveBufferSize: Self { Self(level: SOL_SOCKET, name: SO_RCVBUF, .integer, "SO_RCVBUF") }
    /// The kernel's send buffer in bytes, `SO_SNDBUF`. Linux doubles what is set.
    public static var sendBufferSize: Self { Self(level: SOL_SOCKET, name: SO_SNDBUF, .integer, "SO_SNDBUF") }
}

extension SocketOption where Value == Duration? {
    /// How long `close` may wait to send unsent data, `SO_LINGER`; nil turns lingering off.
    /// `.zero` makes `close` reset the connection at once. Rounded to whole seconds.
    public static var linger: Self { Self(level: SOL_SOCKET, name: SO_LINGER, .linger, "SO_LINGER") }
}

extension SocketOption {
    /// Sets the option on `fd`.
    func set(_ value: Value, on fd: CInt) throws(IOError) {
        switch encoding {
        case .flag: try Self.store(CInt((value as! Bool) ? 1 : 0), level: level, name: name, fd: fd)
        case .integer: try Self.store(CInt(clamping: value as! Int), level: level, name: name, fd: fd)
        case .linger:
            let timeout = value as! Duration?
            let seconds = timeout.map { CInt(clamping: $0.components.seconds + ($0.components.attoseconds > 0 ? 1 : 0)) }
            try Self.store(CLinger(l_onoff: seconds == nil ? 0 : 1, l_linger: seconds ?? 0), level: level, name: name, fd: fd)
        }
    }

    /// Reads the option from `fd`.
    func get(from fd: CInt) throws(IOError) -> Value {
        switch encoding {
        case .flag: return (try Self.load(CInt.self, level: level, name: name, fd: fd) != 0) as! Value
        case .integer: return Int(try Self.load(CInt.self, level: level, name: name, fd: fd)) as! Value
        case .linger:
            let value = try Self.load(CLinger.self, level: level, name: name, fd: fd)
            return (value.l_onoff == 0 ? nil : Duration.seconds(value.l_linger)) as! Value
        }
    }

    private static func store<Raw: BitwiseCopyable>(_ raw: Raw, level: CInt, name: CInt, fd: CInt) throws(IOError) {
        do {
            _ = try valueOrErrno {
                withUnsafeBytes(of: raw) { setsockopt(fd, level, name, $0.baseAddress, socklen_t($0.count)) }
            }
        } catch {
            throw IOError(.setOption, error)
        }
    }

    private static func load<Raw: BitwiseCopyable>(_ type: Raw.Type, level: CInt, name: CInt, fd: CInt) throws(IOError) -> Raw {
        let raw = UnsafeMutablePointer<Raw>.allocate(capacity: 1)
        defer { raw.deallocate() }
        var length = socklen_t(MemoryLayout<Raw>.size)
        do {
            _ = try valueOrErrno { getsockopt(fd, level, name, raw, &length) }
        } catch {
            throw IOError(.getOption, error)
        }
        return raw.pointee
    }
}

/// The C `struct linger`, which ``SocketOption/linger`` would hide inside the type.
private typealias CLinger = linger
