import SystemPackage

/// Reading and writing a byte stream (a pipe, a TCP or Unix stream socket) on a
/// registered descriptor, with the syscall supplied by the caller.
///
/// A short read or write proves the stream drained or full for now, so the readiness
/// is cleared at once and the next call waits for an event instead of paying `EAGAIN`.
extension AsyncFD {
    /// A syscall that moves up to `count` bytes at `bytes` and returns the count or -1.
    typealias ReadCall = (_ fd: CInt, _ bytes: UnsafeMutableRawPointer?, _ count: Int) -> Int
    typealias WriteCall = (_ fd: CInt, _ bytes: UnsafeRawPointer?, _ count: Int) -> Int

    /// Reads at most `buffer.count` bytes, waiting until at least one is available.
    /// Returns 0 at end-of-stream.
    func readSome(
        into buffer: UnsafeMutableRawBufferPointer, as name: IOError.Operation,
        peer: SocketAddress? = nil, _ call: ReadCall
    ) async throws -> Int {
        try await perform(.readable, as: name, address: peer, drained: { $0 > 0 && $0 < buffer.count }) { (fd) throws(Errno) in
            try valueOrErrno { call(fd, buffer.baseAddress, buffer.count) }
        }
    }

    /// Reads at most `buffer.count` bytes into an array. See ``readSome(into:as:peer:_:)-(UnsafeMutableRawBufferPointer,_,_,_)``.
    func readSome(
        into buffer: inout [UInt8], as name: IOError.Operation,
        peer: SocketAddress? = nil, _ call: ReadCall
    ) async throws -> Int {
        let requested = buffer.count
        return try await perform(.readable, as: name, address: peer, drained: { $0 > 0 && $0 < requested }) { (fd) throws(Errno) in
            try valueOrErrno { buffer.withUnsafeMutableBytes { call(fd, $0.baseAddress, $0.count) } }
        }
    }

    /// Writes all of `bytes`, waiting whenever the stream is full.
    func writeAll(
        _ bytes: UnsafeRawBufferPointer, as name: IOError.Operation,
        peer: SocketAddress? = nil, _ call: WriteCall
    ) async throws {
        var written = 0
        while written < bytes.count {
            let remaining = bytes.count - written
            written += try await perform(.writable, as: name, address: peer, drained: { $0 < remaining }) { (fd) throws(Errno) in
                try valueOrErrno { call(fd, bytes.baseAddress! + written, remaining) }
            }
        }
    }

    /// Writes all of a collection of bytes; one that is not contiguous is copied first.
    func writeAll(
        _ bytes: some Collection<UInt8>, as name: IOError.Operation,
        peer: SocketAddress? = nil, _ call: WriteCall
    ) async throws {
        guard bytes.withContiguousStorageIfAvailable({ _ in true }) != nil else {
            return try await writeAll(Array(bytes), as: name, peer: peer, call)
        }
        var written = 0
        while written < bytes.count {
            let remaining = bytes.count - written
            written += try await perform(.writable, as: name, address: peer, drained: { $0 < remaining }) { (fd) throws(Errno) in
                try valueOrErrno {
                    bytes.withContiguousStorageIfAvailable { call(fd, $0.baseAddress! + written, remaining) }!
                }
            }
        }
    }
}
