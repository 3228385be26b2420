#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// What Unix stream and datagram sockets share: socket files left behind, and pairs.
extension SocketCalls {
    /// Removes the socket file of `address` if nothing answers on it any more.
    ///
    /// A probe of the same `type` connects to it: `ECONNREFUSED` means no socket is bound
    /// there. Anything else (it answers, it is not a socket, it is not there) leaves the
    /// path alone, and `bind(2)` then says what is wrong with it.
    static func removeStaleUnixSocket(at address: SocketAddress, type: CInt) throws(IOError) {
        guard let path = address.path else { return }
        var status = stat()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK else { return }
        let probe = try socket(.unix, type: type, address: address)
        defer { discard(probe) }
        do {
            _ = try startConnect(probe, to: address)
        } catch where error.errno == .connectionRefused {
            // ENOENT: another process removed it first, which is what was wanted.
            guard unlink(path) == -1, errno != ENOENT else { return }
            throw IOError(.bind, Errno(rawValue: errno), address: address)
        } catch {
            return
        }
    }

    /// Two Unix sockets of `type` connected to each other, both registered on one loop.
    /// The corresponding C function is `socketpair(2)`, with `SOCK_NONBLOCK | SOCK_CLOEXEC`.
    static func pair(type: CInt, on loop: EventLoop?) throws -> (AsyncFD, AsyncFD) {
        var ends: (CInt, CInt) = (-1, -1)
        #if os(Linux)
        let flags = CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
        #else
        let flags: CInt = 0
        #endif
        let result = withUnsafeMutableBytes(of: &ends) { buffer in
            socketpair(AF_UNIX, type | flags, 0, buffer.baseAddress!.assumingMemoryBound(to: CInt.self))
        }
        guard result == 0 else { throw IOError(.create, Errno(rawValue: errno)) }
        let first: AsyncFD
        do {
            first = try AsyncFD(FileDescriptor(rawValue: ends.0), on: loop)
        } catch {
            discard(ends.0)
            discard(ends.1)
            throw error
        }
        do {
            return (first, try AsyncFD(FileDescriptor(rawValue: ends.1), on: first.eventLoop))
        } catch {
            discard(ends.1)
            try? first.close()
            throw error
        }
    }
}
