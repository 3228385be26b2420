#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// What every socket of Reactor's offers: its registered descriptor, its addresses and
/// options, and closing.
public protocol Socket: Sendable {
    /// The registered descriptor; its loop resumes the socket's tasks.
    var descriptor: AsyncFD { get }
}

extension Socket {
    /// The loop that watches this socket. Tasks that use it run fastest on this loop.
    public var eventLoop: EventLoop { descriptor.eventLoop }

    /// The address this socket is bound to. The corresponding C function is `getsockname(2)`.
    ///
    /// - Throws: ``IOError`` with operation `.address`.
    public var localAddress: SocketAddress {
        get throws { try SocketCalls.address(of: descriptor.fileDescriptor.rawValue, peer: false) }
    }

    /// Sets a socket option, e.g. `try socket.setOption(.noDelay, to: true)`.
    ///
    /// - Throws: ``IOError`` with operation `.setOption`.
    public func setOption<Value>(_ option: SocketOption<Value>, to value: Value) throws {
        try option.set(value, on: descriptor.fileDescriptor.rawValue)
    }

    /// Reads a socket option, e.g. `try socket.option(.receiveBufferSize)`.
    ///
    /// - Throws: ``IOError`` with operation `.getOption`.
    public func option<Value>(_ option: SocketOption<Value>) throws -> Value {
        try option.get(from: descriptor.fileDescriptor.rawValue)
    }

    /// Closes the socket; tasks waiting on it resume with ``ReactorError/closed``.
    /// See ``AsyncFD/close()``.
    public func close() throws {
        try descriptor.close()
    }
}

extension SocketAddress.Family {
    /// The `AF_*` constant.
    var domain: CInt {
        switch self {
        case .ipv4: AF_INET
        case .ipv6: AF_INET6
        case .unix: AF_UNIX
        }
    }
}

/// The socket syscalls the socket types share, each turning failure into an ``IOError``
/// that names the address.
enum SocketCalls {
    /// A new socket, non-blocking and close-on-exec from birth (DESIGN §3.6).
    static func socket(_ family: SocketAddress.Family, type: CInt, address: SocketAddress? = nil) throws(IOError) -> CInt {
        do {
            #if os(Linux)
            let flags = CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
            #else
            let flags: CInt = 0
            #endif
            return try valueOrErrno { systemSocket(family.domain, type | flags, 0) }
        } catch {
            throw IOError(.socket, error, address: address)
        }
    }

    static func bind(_ fd: CInt, to address: SocketAddress) throws(IOError) {
        do {
            _ = try address.withSockAddr { (pointer, length) throws(Errno) in
                try valueOrErrno { systemBind(fd, pointer, length) }
            }
        } catch {
            throw IOError(.bind, error, address: address)
        }
    }

    /// The corresponding C function is `listen(2)`.
    static func listen(_ fd: CInt, backlog: Int, address: SocketAddress) throws(IOError) {
        do {
            _ = try valueOrErrno { systemListen(fd, CInt(clamping: backlog)) }
        } catch {
            throw IOError(.listen, error, address: address)
        }
    }

    /// Starts a non-blocking connect. Returns true if it completed at once, false if it
    /// is in progress (the socket turns writable when it ends).
    static func startConnect(_ fd: CInt, to address: SocketAddress) throws(IOError) -> Bool {
        do {
            _ = try address.withSockAddr { (pointer, length) throws(Errno) in
                try valueOrErrno { systemConnect(fd, pointer, length) }
            }
            return true
        } catch .nowInProgress {
            return false
        } catch {
            throw IOError(.connect, error, address: address)
        }
    }

    /// The outcome of a connect that was in progress, from `SO_ERROR`.
    static func finishConnect(_ fd: CInt, to address: SocketAddress) throws(IOError) {
        var pending: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &pending, &length) == 0 else {
            throw IOError(.connect, Errno(rawValue: errno), address: address)
        }
        if pending != 0 { throw IOError(.connect, Errno(rawValue: pending), address: address) }
    }

    /// The socket's own address, or its peer's. The corresponding C functions are
    /// `getsockname(2)` and `getpeername(2)`.
    static func address(of fd: CInt, peer: Bool) throws(IOError) -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                peer ? getpeername(fd, address, &length) : getsockname(fd, address, &length)
            }
        }
        guard result == 0 else { throw IOError(.address, Errno(rawValue: errno)) }
        do {
            return try SocketAddress(storage, length: length)
        } catch {
            throw IOError(.address, .addressFamilyNotSupported)
        }
    }

    /// A new socket of `family` and `type`, prepared by `configure`, bound to `address`
    /// when there is one, listening when given a `backlog`, and registered on `loop`.
    /// Nothing stays open if a step fails.
    static func open(
        _ family: SocketAddress.Family, type: CInt, boundTo address: SocketAddress?,
        listening backlog: Int? = nil, on loop: EventLoop?,
        configure: (CInt) throws -> Void = { _ in }
    ) throws -> AsyncFD {
        let fd = try socket(family, type: type, address: address)
        do {
            try configure(fd)
            if let address { try bind(fd, to: address) }
            if let backlog, let address { try listen(fd, backlog: backlog, address: address) }
            // A listener is readable when a connection waits, and never written to.
            let assumed: Interest = backlog == nil ? .writable : []
            return try AsyncFD(FileDescriptor(rawValue: fd), on: loop, assuming: assumed)
        } catch {
            discard(fd)
            throw error
        }
    }

    /// Closes a socket that never got registered.
    static func discard(_ fd: CInt) {
        closeDescriptor(fd)
    }
}

// The C functions, reachable by these names from inside `SocketCalls`, whose members
// of the same names would hide them.
private func systemSocket(_ domain: CInt, _ type: CInt, _ proto: CInt) -> CInt { socket(domain, type, proto) }
private func systemBind(_ fd: CInt, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> CInt {
    bind(fd, address, length)
}
private func systemListen(_ fd: CInt, _ backlog: CInt) -> CInt { listen(fd, backlog) }
private func systemConnect(_ fd: CInt, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> CInt {
    connect(fd, address, length)
}
