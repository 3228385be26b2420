#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// A UDP socket: datagrams to and from IPv4 or IPv6 addresses, one at a time or in
/// batches, to one peer, to many, to a broadcast address, or to a multicast group.
///
/// ```swift
/// let socket = try UDPSocket.bind(to: SocketAddress(parsing: "127.0.0.1:0"))
/// try await socket.send([1, 2, 3], to: SocketAddress(parsing: "127.0.0.1:5353"))
/// let datagram = try await socket.receive(upTo: 1_500)
/// print(datagram.sender, datagram.bytes, datagram.isTruncated)
/// try socket.close()
/// ```
///
/// Sending and receiving come from ``DatagramSocket``; options (``SocketOption/broadcast``,
/// ``SocketOption/ipv4MulticastLoop``, ...), ``Socket/localAddress`` and closing from
/// ``Socket``. Tasks on the socket's ``Socket/eventLoop`` use it without a thread hop.
public final class UDPSocket: DatagramSocket {
    /// The registered descriptor.
    public let descriptor: AsyncFD
    /// IPv4 or IPv6, as bound: the multicast options differ between them.
    private let family: SocketAddress.Family

    private init(_ descriptor: AsyncFD, family: SocketAddress.Family) {
        self.descriptor = descriptor
        self.family = family
    }

    /// Makes a UDP socket bound to `address`.
    ///
    /// Port 0 lets the kernel pick a free port: ``Socket/localAddress`` tells which. The
    /// wildcard address (`0.0.0.0`, `[::]`) receives on every interface; a multicast
    /// group's address receives only that group's datagrams.
    ///
    /// - Parameters:
    ///   - address: an IPv4 or IPv6 address and port.
    ///   - reuseAddress: sets ``SocketOption/reuseAddress`` before binding.
    ///   - reusePort: sets ``SocketOption/reusePort`` before binding, so that several
    ///     sockets can bind the same address and port and share its datagrams.
    ///   - loop: the loop to register on; by default the calling thread's loop, or one of
    ///     the default group's when the caller runs on no loop.
    /// - Returns: the bound socket.
    /// - Throws: ``IOError`` with operation `.bind` and `address` (for example
    ///   `Errno.addressInUse`, `Errno.addressNotAvailable`, and
    ///   `Errno.addressFamilyNotSupported` for a Unix address, which
    ///   ``UnixDatagramSocket`` takes), `.socket`, `.setOption` or `.register`;
    ///   ``ReactorError/loopShutDown``. The corresponding C functions are `socket(2)` and
    ///   `bind(2)`.
    public static func bind(
        to address: SocketAddress, reuseAddress: Bool = false, reusePort: Bool = false, on loop: EventLoop? = nil
    ) throws -> UDPSocket {
        guard address.family != .unix else { throw IOError(.bind, .addressFamilyNotSupported, address: address) }
        let descriptor = try SocketCalls.open(address.family, type: CInt(SOCK_DGRAM.rawValue), boundTo: address, on: loop) { fd in
            if reuseAddress { try SocketOption.reuseAddress.set(true, on: fd) }
            if reusePort { try SocketOption.reusePort.set(true, on: fd) }
        }
        return UDPSocket(descriptor, family: address.family)
    }

    // MARK: Multicast

    /// Joins the multicast group `group` on one interface, so that the socket receives
    /// the datagrams sent to it (when bound to the group's port).
    ///
    /// The corresponding C function is `setsockopt(2)` with `IP_ADD_MEMBERSHIP` (a
    /// `struct ip_mreqn`) for an IPv4 group, or `IPV6_JOIN_GROUP` (a `struct ipv6_mreq`)
    /// for an IPv6 group.
    ///
    /// - Parameters:
    ///   - group: the group's address; its port is ignored.
    ///   - interfaceIndex: the interface to join on, as `if_nametoindex(3)` numbers them
    ///     (`lo` is usually 1); 0 lets the kernel choose from its routing table.
    /// - Throws: ``IOError`` with operation ``IOError/Operation/joinGroup`` and `group`
    ///   (for example `Errno.invalidArgument` for an address that is not multicast,
    ///   `Errno.noSuchDevice` for an unknown interface, `Errno.addressInUse` if already
    ///   joined there, `Errno.addressFamilyNotSupported` for a Unix address).
    public func join(group: SocketAddress, interfaceIndex: UInt32 = 0) throws {
        try changeMembership(of: group, interfaceIndex: interfaceIndex, joining: true)
    }

    /// Leaves the multicast group `group` on one interface, as joined by
    /// ``join(group:interfaceIndex:)``. Closing the socket leaves every group it joined.
    ///
    /// The corresponding C function is `setsockopt(2)` with `IP_DROP_MEMBERSHIP` or
    /// `IPV6_LEAVE_GROUP`.
    ///
    /// - Parameters:
    ///   - group: the group's address; its port is ignored.
    ///   - interfaceIndex: the interface it was joined on; 0 as when it was joined with 0.
    /// - Throws: ``IOError`` with operation ``IOError/Operation/leaveGroup`` and `group`
    ///   (for example `Errno.addressNotAvailable` if the socket is not a member there).
    public func leave(group: SocketAddress, interfaceIndex: UInt32 = 0) throws {
        try changeMembership(of: group, interfaceIndex: interfaceIndex, joining: false)
    }

    /// Chooses the interface that multicast datagrams leave by, instead of the routing
    /// table's choice.
    ///
    /// The corresponding C function is `setsockopt(2)` with `IP_MULTICAST_IF` (a
    /// `struct ip_mreqn`) on an IPv4 socket, or `IPV6_MULTICAST_IF` on an IPv6 socket.
    ///
    /// - Parameter interfaceIndex: the interface, as `if_nametoindex(3)` numbers them; 0
    ///   returns the choice to the routing table.
    /// - Throws: ``IOError`` with operation `.setOption` (for example `Errno.noSuchDevice`
    ///   for an unknown interface).
    public func setMulticastInterface(_ interfaceIndex: UInt32) throws {
        let fd = descriptor.fileDescriptor.rawValue
        let result: CInt
        switch family {
        case .ipv4:
            var request = ip_mreqn()
            request.imr_ifindex = CInt(bitPattern: interfaceIndex)
            result = setsockopt(fd, CInt(IPPROTO_IP), IP_MULTICAST_IF, &request, socklen_t(MemoryLayout<ip_mreqn>.size))
        case .ipv6:
            var index = CInt(bitPattern: interfaceIndex)
            result = setsockopt(fd, CInt(IPPROTO_IPV6), IPV6_MULTICAST_IF, &index, socklen_t(MemoryLayout<CInt>.size))
        case .unix:
            preconditionFailure("bind(to:) refuses Unix addresses")
        }
        guard result == 0 else { throw IOError(.setOption, Errno(rawValue: errno)) }
    }

    private func changeMembership(of group: SocketAddress, interfaceIndex: UInt32, joining: Bool) throws {
        let operation: IOError.Operation = joining ? .joinGroup : .leaveGroup
        let fd = descriptor.fileDescriptor.rawValue
        let result: CInt
        switch group.family {
        case .ipv4:
            var request = ip_mreqn()
            request.imr_multiaddr = group.withSockAddr { name, _ in
                UnsafeRawPointer(name).loadUnaligned(as: sockaddr_in.self).sin_addr
            }
            request.imr_ifindex = CInt(bitPattern: interfaceIndex)
            result = setsockopt(fd, CInt(IPPROTO_IP), joining ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP,
                                &request, socklen_t(MemoryLayout<ip_mreqn>.size))
        case .ipv6:
            var request = ipv6_mreq()
            request.ipv6mr_multiaddr = group.withSockAddr { name, _ in
                UnsafeRawPointer(name).loadUnaligned(as: sockaddr_in6.self).sin6_addr
            }
            request.ipv6mr_interface = interfaceIndex
            result = setsockopt(fd, CInt(IPPROTO_IPV6), joining ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP,
                                &request, socklen_t(MemoryLayout<ipv6_mreq>.size))
        case .unix:
            throw IOError(operation, .addressFamilyNotSupported, address: group)
        }
        guard result == 0 else { throw IOError(operation, Errno(rawValue: errno), address: group) }
    }
}

extension IOError.Operation {
    /// Joining a multicast group: `setsockopt(2)` with `IP_ADD_MEMBERSHIP` or
    /// `IPV6_JOIN_GROUP`.
    public static let joinGroup = IOError.Operation("join group")
    /// Leaving a multicast group: `setsockopt(2)` with `IP_DROP_MEMBERSHIP` or
    /// `IPV6_LEAVE_GROUP`.
    public static let leaveGroup = IOError.Operation("leave group")
}

extension SocketOption where Value == Bool {
    /// Delivers the multicast datagrams an IPv4 socket sends to the sending host's own
    /// members of the group too, `IP_MULTICAST_LOOP`. On by default.
    public static var ipv4MulticastLoop: Self {
        Self(level: CInt(IPPROTO_IP), name: IP_MULTICAST_LOOP, .flag, "IP_MULTICAST_LOOP")
    }

    /// Delivers the multicast datagrams an IPv6 socket sends to the sending host's own
    /// members of the group too, `IPV6_MULTICAST_LOOP`. On by default.
    public static var ipv6MulticastLoop: Self {
        Self(level: CInt(IPPROTO_IPV6), name: IPV6_MULTICAST_LOOP, .flag, "IPV6_MULTICAST_LOOP")
    }
}

extension SocketOption where Value == Int {
    /// How many routers the multicast datagrams an IPv4 socket sends may cross, from 0
    /// to 255, `IP_MULTICAST_TTL`. 1 by default: the local network only.
    public static var ipv4MulticastTimeToLive: Self {
        Self(level: CInt(IPPROTO_IP), name: IP_MULTICAST_TTL, .integer, "IP_MULTICAST_TTL")
    }

    /// How many routers the multicast datagrams an IPv6 socket sends may cross, from 0
    /// to 255 (-1 restores the default, 1), `IPV6_MULTICAST_HOPS`.
    public static var ipv6MulticastHopLimit: Self {
        Self(level: CInt(IPPROTO_IPV6), name: IPV6_MULTICAST_HOPS, .integer, "IPV6_MULTICAST_HOPS")
    }
}
