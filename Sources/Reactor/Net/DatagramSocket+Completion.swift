#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension UnsafeMutablePointer where Pointee == MessageHeaders.Message {
    /// Points the header at `bytes` and at the message's address storage, which holds
    /// `destination` for a send, or, for a receive (`destination` nil), room for the
    /// sender. Without a destination, a send goes to the connected peer.
    func prepare(_ bytes: UnsafeMutableRawBufferPointer, destination: SocketAddress?, receiving: Bool) {
        let vector = pointer(to: \.vector)!
        let address = pointer(to: \.address)!
        vector.pointee = iovec(iov_base: bytes.baseAddress, iov_len: bytes.count)
        var length = receiving ? MemoryLayout<sockaddr_storage>.size : 0
        if let destination {
            address.pointee = sockaddr_storage()
            length = destination.encode(into: UnsafeMutableRawBufferPointer(start: address, count: MemoryLayout<sockaddr_storage>.size))
        }
        pointee.header = msghdr(
            msg_name: length == 0 ? nil : UnsafeMutableRawPointer(address), msg_namelen: socklen_t(length),
            msg_iov: vector, msg_iovlen: 1, msg_control: nil, msg_controllen: 0, msg_flags: 0)
    }

    var header: UnsafeMutablePointer<msghdr> { pointer(to: \.header)! }

    /// The sender a receive's header names.
    var sender: SocketAddress {
        SocketAddress(receivedFrom: UnsafeRawBufferPointer(start: pointer(to: \.address)!, count: Int(pointee.header.msg_namelen)))
    }

    /// Whether a receive cut the datagram to fit (`MSG_TRUNC`).
    var isTruncated: Bool { pointee.header.msg_flags & CInt(MSG_TRUNC) != 0 }
}

extension AsyncFD {
    /// Sends `bytes` as one datagram to `destination`, or to the connected peer, as a
    /// completion operation on the descriptor's loop (`sendmsg(2)` with `MSG_NOSIGNAL`),
    /// which does not wait for room: `EAGAIN` is the caller's to wait out.
    ///
    /// - Throws: as ``completion(of:reading:atOnce:as:address:)``, naming `.send` and `destination`.
    func sendCompleting(_ bytes: UnsafeRawBufferPointer, to destination: SocketAddress?) async throws {
        try await messageHeaders.withMessage(sending: true) { message in
            message.prepare(UnsafeMutableRawBufferPointer(mutating: bytes), destination: destination, receiving: false)
            // MSG_DONTWAIT: a Unix datagram send copies the bytes before it finds the
            // receiver's queue full and fails, and the kernel's own retry of that send
            // would then carry an empty datagram (seen on Linux 6.18). A datagram goes whole
            // or not at all, so the count sent needs no checking.
            let flags = CInt(MSG_NOSIGNAL) | CInt(MSG_DONTWAIT)
            _ = try await complete(
                .sendMessage(io.descriptor, message.header, flags: flags), reading: false, as: .send, address: destination)
        }
    }

    /// Receives one datagram into `buffer` as a completion operation on the descriptor's
    /// loop (`recvmsg(2)`), with its sender and whether it was cut to fit.
    ///
    /// - Throws: as ``completion(of:reading:atOnce:as:address:)``, naming `.receive`.
    func receiveCompleting(into buffer: UnsafeMutableRawBufferPointer) async throws -> ReceivedDatagram {
        try await messageHeaders.withMessage(sending: false) { message in
            message.prepare(buffer, destination: nil, receiving: true)
            let count = try await complete(.receiveMessage(io.descriptor, message.header, flags: 0), reading: true, as: .receive, address: nil)
            return ReceivedDatagram(byteCount: count, sender: message.sender, isTruncated: message.isTruncated)
        }
    }

    /// The descriptor's message headers, made on first use. Loop thread only.
    private var messageHeaders: MessageHeaders {
        if let existing = messages { return existing }
        let made = MessageHeaders()
        messages = made
        return made
    }
}
