#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// A socket that sends and receives whole datagrams, each with its own address: a
/// ``UDPSocket`` or a ``UnixDatagramSocket``.
///
/// A datagram arrives whole or not at all. A receive into a buffer smaller than the
/// datagram keeps its start, drops the rest, and says so in `isTruncated`: truncation is
/// reported, never silent. Sends never raise `SIGPIPE`.
///
/// After ``connect(to:)`` the socket has a default destination, and receives only from
/// it; sends may then leave out the address.
///
/// One task may receive while another sends. A second task that waits to receive (or to
/// send) while the first still waits gets ``ReactorError/busy``.
public protocol DatagramSocket: Socket {}

/// What a receive into a caller's buffer took in: how many bytes, from whom, and whether
/// the datagram was cut to fit.
public struct ReceivedDatagram: Hashable, Sendable {
    /// The bytes written at the start of the buffer.
    public var byteCount: Int
    /// Who sent the datagram. A datagram from an unbound Unix socket comes from the
    /// unnamed address, `unix:`.
    public var sender: SocketAddress
    /// The datagram was longer than the buffer, and its end was dropped (`MSG_TRUNC`).
    public var isTruncated: Bool
}

/// A received datagram's bytes, its sender, and whether it was cut to fit.
public struct Datagram: Hashable, Sendable {
    /// The bytes received: the whole datagram, or its start when ``isTruncated``.
    public var bytes: [UInt8]
    /// Who sent the datagram; see ``ReceivedDatagram/sender``.
    public var sender: SocketAddress
    /// The datagram was longer than the receive allowed, and its end was dropped.
    public var isTruncated: Bool
}

extension DatagramSocket {
    // MARK: One datagram

    /// Sends `bytes` as one datagram, waiting while the socket's send buffer is full.
    /// The corresponding C function is `sendto(2)`, with `MSG_NOSIGNAL`.
    ///
    /// - Parameters:
    ///   - bytes: the datagram; a datagram larger than the protocol allows fails with
    ///     `Errno.messageTooLong`.
    ///   - destination: where to send it; nil sends to the peer set by ``connect(to:)``.
    /// - Throws: ``IOError`` with operation `.send` and the destination (for example
    ///   `Errno.messageTooLong`, `Errno.permissionDenied` for a broadcast address without
    ///   ``SocketOption/broadcast``, `Errno.connectionRefused` on a connected socket whose
    ///   peer is not there); `CancellationError`; ``ReactorError/closed``,
    ///   ``ReactorError/loopShutDown``, ``ReactorError/busy``.
    public func send(_ bytes: UnsafeRawBufferPointer, to destination: SocketAddress? = nil) async throws {
        do {
            if descriptor.runsCompletions {
                do {
                    return try await descriptor.sendCompleting(bytes, to: destination)
                } catch let error as IOError where error.errno == .resourceTemporarilyUnavailable {
                    // The send through the ring does not wait (see sendCompleting): readiness
                    // waits instead, as on epoll, and the retry sends from the caller's bytes.
                }
            }
            // A datagram goes whole or not at all, so the count sent needs no checking.
            _ = try await descriptor.perform(.writable, as: .send, address: destination) { (fd) throws(Errno) in
                try valueOrErrno { sendDatagram(fd, bytes, to: destination) }
            }
        } catch let error as IOError {
            throw naming(nil, in: error)
        }
    }

    /// Sends `bytes` (an `Array`, `ArraySlice`, or any collection of bytes; one that is
    /// not contiguous is copied first) as one datagram. See
    /// ``send(_:to:)-(UnsafeRawBufferPointer,_)``.
    ///
    /// - Parameters:
    ///   - bytes: the datagram.
    ///   - destination: where to send it; nil sends to the peer set by ``connect(to:)``.
    /// - Throws: as ``send(_:to:)-(UnsafeRawBufferPointer,_)``.
    public func send(_ bytes: some Collection<UInt8>, to destination: SocketAddress? = nil) async throws {
        // `bytes` is a constant this call keeps alive and nobody can mutate: its
        // contiguous storage stays where it is until the call returns.
        guard let storage = bytes.withContiguousStorageIfAvailable({ UnsafeRawBufferPointer($0) }) else {
            return try await send(Array(bytes), to: destination)
        }
        defer { withExtendedLifetime(bytes) {} }
        try await send(storage, to: destination)
    }

    /// Receives one datagram into `buffer`, waiting until one arrives.
    /// The corresponding C function is `recvmsg(2)`.
    ///
    /// - Parameter buffer: where the datagram goes. A longer datagram is cut to fit, and
    ///   the result says so.
    /// - Returns: the byte count, the sender, and whether the datagram was truncated.
    /// - Throws: ``IOError`` with operation `.receive` (on a connected socket it names the
    ///   peer, for example `Errno.connectionRefused` when an earlier send found nobody
    ///   there); `CancellationError`; ``ReactorError/closed``,
    ///   ``ReactorError/loopShutDown``, ``ReactorError/busy``.
    public func receive(into buffer: UnsafeMutableRawBufferPointer) async throws -> ReceivedDatagram {
        do {
            if descriptor.runsCompletions { return try await descriptor.receiveCompleting(into: buffer) }
            // A datagram says nothing of what else waits, so readiness is cleared only by `EAGAIN`.
            return try await descriptor.perform(.readable, as: .receive) { (fd) throws(Errno) in
                try receiveMessage(fd, into: buffer)
            }
        } catch let error as IOError {
            throw naming(nil, in: error)
        }
    }

    /// Receives one datagram of at most `maximumCount` bytes into a new array.
    /// See ``receive(into:)``.
    ///
    /// - Parameter maximumCount: the longest datagram kept whole; a longer one is cut to
    ///   this size, and the result says so. 65,536 holds any UDP datagram.
    /// - Returns: the bytes, the sender, and whether the datagram was truncated.
    /// - Throws: as ``receive(into:)``.
    public func receive(upTo maximumCount: Int) async throws -> Datagram {
        var bytes = [UInt8](repeating: 0, count: maximumCount)
        // The array is ours alone, and unique, until the receive returns: nothing can move
        // its storage while the kernel may write to it.
        let storage = bytes.withUnsafeMutableBytes { $0 }
        let received = try await receive(into: storage)
        bytes.removeSubrange(received.byteCount...)
        return Datagram(bytes: bytes, sender: received.sender, isTruncated: received.isTruncated)
    }

    // MARK: Batches

    /// Sends every datagram of `batch`, in order, with as few syscalls as the socket
    /// allows: one for the whole batch unless its send buffer fills.
    /// The corresponding C function is `sendmmsg(2)`, with `MSG_NOSIGNAL`.
    ///
    /// A datagram appended without a destination goes to the peer set by
    /// ``connect(to:)``.
    ///
    /// - Parameter batch: the datagrams; see ``DatagramBatch/append(_:to:)``. It is left
    ///   as it was.
    /// - Throws: as ``send(_:to:)-(UnsafeRawBufferPointer,_)``, at the first datagram that
    ///   fails: the error names its destination, and the datagrams before it were sent.
    public func send(batch: borrowing DatagramBatch) async throws {
        let headers = batch.headers
        let total = batch.count
        var sent = 0
        while sent < total {
            let first = sent
            do {
                // sendmmsg reports an error only when the first datagram of the call fails;
                // after a partial send, the next call starts at the one that stopped it.
                sent += try await descriptor.perform(.writable, as: .send) { (fd) throws(Errno) in
                    Int(try valueOrErrno {
                        sendMultipleMessages(fd, headers + first, count: CUnsignedInt(total - first), flags: CInt(MSG_NOSIGNAL))
                    })
                }
            } catch let error as IOError {
                throw naming(batch.address(at: first), in: error)
            }
        }
    }

    /// Replaces the contents of `batch` with the datagrams that are waiting, as many as
    /// it holds, waiting until at least one arrives. The corresponding C function is
    /// `recvmmsg(2)`.
    ///
    /// Afterwards ``DatagramBatch/count`` says how many arrived; for each,
    /// ``DatagramBatch/withBytes(at:_:)``, ``DatagramBatch/address(at:)`` (the sender)
    /// and ``DatagramBatch/isTruncated(at:)`` describe it. A datagram longer than
    /// ``DatagramBatch/datagramSize`` is cut to fit.
    ///
    /// - Parameter batch: where the datagrams go; what it held is dropped.
    /// - Throws: as ``receive(into:)``; the batch is then empty.
    public func receive(batch: inout DatagramBatch) async throws {
        batch.prepareToReceive()
        let headers = batch.headers
        let capacity = CUnsignedInt(batch.capacity)
        let received: Int
        do {
            // A batch that comes back short suggests the queue is empty, yet readiness is
            // cleared only by EAGAIN: a recvmmsg(2) that stops short on an error leaves the
            // error in SO_ERROR without a new event, and a receiver parked on cleared
            // readiness would never see it.
            received = try await descriptor.perform(.readable, as: .receive) { (fd) throws(Errno) in
                Int(try valueOrErrno { receiveMultipleMessages(fd, headers, count: capacity) })
            }
        } catch let error as IOError {
            throw naming(nil, in: error)
        }
        batch.finishReceiving(count: received)
    }

    // MARK: Connecting

    /// Sets the peer that sends without an address go to, and from now on receives
    /// datagrams from that peer only. The corresponding C function is `connect(2)`.
    ///
    /// No packet is exchanged: a missing peer shows up later, as `Errno.connectionRefused`
    /// from a send or receive. Connecting again replaces the peer.
    ///
    /// - Parameter peer: the peer's address.
    /// - Throws: ``IOError`` with operation `.connect` and `peer` (for example
    ///   `Errno.addressFamilyNotSupported`, or `Errno.noSuchFileOrDirectory` for a Unix
    ///   path nobody is bound to).
    public func connect(to peer: SocketAddress) throws {
        let completed = try SocketCalls.startConnect(descriptor.fileDescriptor.rawValue, to: peer)
        precondition(completed, "a datagram socket's connect(2) never goes on in the background")
    }

    // MARK: Errors

    /// `error`, naming `address`, or the connected peer when `address` is nil.
    ///
    /// The peer is looked up only on failure: ``connect(to:)`` may change it at any time,
    /// so no copy of it is kept. An unconnected socket has none (`ENOTCONN`), and the
    /// error then names no address.
    private func naming(_ address: SocketAddress?, in error: IOError) -> IOError {
        guard error.address == nil else { return error }
        let concerned = address ?? (try? SocketCalls.address(of: descriptor.fileDescriptor.rawValue, peer: true))
        return IOError(error.operation, error.errno, address: concerned)
    }
}

/// One `sendto(2)` of `bytes` to `destination`, or to the connected peer.
private func sendDatagram(_ fd: CInt, _ bytes: UnsafeRawBufferPointer, to destination: SocketAddress?) -> Int {
    guard let destination else { return sendto(fd, bytes.baseAddress, bytes.count, CInt(MSG_NOSIGNAL), nil, 0) }
    return destination.withSockAddr { name, length in
        sendto(fd, bytes.baseAddress, bytes.count, CInt(MSG_NOSIGNAL), name, length)
    }
}

/// One `recvmsg(2)` into `buffer`, with the sender and `MSG_TRUNC` read back from the
/// message header. Nothing is allocated: the header and the address live on the stack.
private func receiveMessage(_ fd: CInt, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> ReceivedDatagram {
    var name = sockaddr_storage()
    var vector = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
    return try withUnsafeMutablePointer(to: &name) { (name) throws(Errno) in
        try withUnsafeMutablePointer(to: &vector) { (vector) throws(Errno) in
            var message = msghdr(
                msg_name: name, msg_namelen: socklen_t(MemoryLayout<sockaddr_storage>.size),
                msg_iov: vector, msg_iovlen: 1, msg_control: nil, msg_controllen: 0, msg_flags: 0)
            let count = try valueOrErrno { recvmsg(fd, &message, 0) }
            return ReceivedDatagram(
                byteCount: count,
                sender: SocketAddress(receivedFrom: UnsafeRawBufferPointer(start: name, count: Int(message.msg_namelen))),
                isTruncated: message.msg_flags & CInt(MSG_TRUNC) != 0)
        }
    }
}

extension SocketAddress {
    /// The sender's address that `recvmsg(2)` or `recvmmsg(2)` wrote.
    init(receivedFrom bytes: UnsafeRawBufferPointer) {
        // Linux writes no address at all (length 0) for a datagram from an unbound Unix
        // socket: that sender is the unnamed address.
        guard !bytes.isEmpty else {
            // An empty path is neither too long nor holds a NUL.
            self = try! .unix(path: "")
            return
        }
        do {
            try self.init(bytes: bytes)
        } catch {
            // The kernel writes an address of the socket's own family, which is IPv4,
            // IPv6 or Unix: anything else is a bug here.
            preconditionFailure("recvmsg(2) wrote an address that cannot be read: \(error)")
        }
    }
}
