import Glibc
import SystemPackage
import Testing

@testable import Reactor

/// A UDP socket bound to an ephemeral port of `host` (`127.0.0.1` or `::1`).
private func loopbackSocket(_ host: String, on loop: EventLoop) throws -> UDPSocket {
    try UDPSocket.bind(to: SocketAddress(ipAddress: host, port: 0), on: loop)
}

/// The index of the loopback interface, which every multicast test joins on.
private var loopbackIndex: UInt32 { if_nametoindex("lo") }

extension ReactorTests {
    @Suite struct UDPSocketTests {
        @Test("a datagram makes the round trip over IPv4 and IPv6 loopback, with its sender",
              arguments: BackendKind.availableHere, ["127.0.0.1", "::1"])
        func roundTrip(backend: BackendKind, host: String) async throws {
            try await withLoop(backend) { loop in
                let a = try loopbackSocket(host, on: loop)
                let b = try loopbackSocket(host, on: loop)
                let aAddress = try a.localAddress
                let bAddress = try b.localAddress
                #expect(bAddress.host == host)
                #expect(bAddress.port != 0)
                try await onLoop(loop) {
                    try await a.send([1, 2, 3], to: bAddress)
                    let datagram = try await b.receive(upTo: 64)
                    #expect(datagram == Datagram(bytes: [1, 2, 3], sender: aAddress, isTruncated: false))

                    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 1)
                    defer { buffer.deallocate() }
                    buffer.copyBytes(from: [9, 8, 7, 6])
                    try await b.send(UnsafeRawBufferPointer(rebasing: buffer.prefix(4)), to: datagram.sender)
                    buffer.initializeMemory(as: UInt8.self, repeating: 0)
                    let received = try await a.receive(into: buffer)
                    #expect(received == ReceivedDatagram(byteCount: 4, sender: bAddress, isTruncated: false))
                    #expect(Array(buffer.prefix(4)) == [9, 8, 7, 6])
                }
                try a.close()
                try b.close()
            }
        }

        @Test("a datagram longer than the buffer is cut and reported truncated; the next one is whole",
              arguments: BackendKind.availableHere)
        func truncation(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let a = try loopbackSocket("127.0.0.1", on: loop)
                let b = try loopbackSocket("127.0.0.1", on: loop)
                let bAddress = try b.localAddress
                let long = (0..<100).map { UInt8($0) }
                try await onLoop(loop) {
                    try await a.send(long, to: bAddress)
                    try await a.send(long, to: bAddress)
                    try await a.send([42], to: bAddress)

                    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 10, alignment: 1)
                    defer { buffer.deallocate() }
                    let cut = try await b.receive(into: buffer)
                    #expect(cut.byteCount == 10)
                    #expect(cut.isTruncated)
                    #expect(Array(buffer) == Array(long.prefix(10)))

                    let cutArray = try await b.receive(upTo: 20)
                    #expect(cutArray.bytes == Array(long.prefix(20)))
                    #expect(cutArray.isTruncated)

                    let whole = try await b.receive(upTo: 10)
                    #expect(whole.bytes == [42])
                    #expect(!whole.isTruncated)
                }
                try a.close()
                try b.close()
            }
        }

        @Test("a connected socket sends without an address and hears only its peer", arguments: BackendKind.availableHere)
        func connected(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let a = try loopbackSocket("127.0.0.1", on: loop)
                let b = try loopbackSocket("127.0.0.1", on: loop)
                let stranger = try loopbackSocket("127.0.0.1", on: loop)
                let aAddress = try a.localAddress
                let bAddress = try b.localAddress
                try a.connect(to: bAddress)
                try b.connect(to: aAddress)
                try await onLoop(loop) {
                    // The stranger's datagram is dropped by the kernel, so b's first one is a's.
                    try await stranger.send([66], to: bAddress)
                    try await a.send([1, 2])
                    let datagram = try await b.receive(upTo: 8)
                    #expect(datagram == Datagram(bytes: [1, 2], sender: aAddress, isTruncated: false))
                    try await b.send(repeatElement(5, count: 3))
                    #expect(try await a.receive(upTo: 8).bytes == [5, 5, 5])
                }
                try a.close()
                try b.close()
                try stranger.close()
            }
        }

        @Test("a connected socket whose peer's port takes nothing from it reports ECONNREFUSED, naming the peer",
              arguments: BackendKind.availableHere)
        func connectionRefused(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                // Connected to itself, the peer takes datagrams from nobody else, so the
                // kernel answers `a`'s with port-unreachable. It keeps its port bound: closed,
                // the port could go to a socket a test beside this one binds, which would
                // take the datagram.
                let peer = try loopbackSocket("127.0.0.1", on: loop)
                let peerAddress = try peer.localAddress
                try peer.connect(to: peerAddress)
                let a = try loopbackSocket("127.0.0.1", on: loop)
                try a.connect(to: peerAddress)
                // Loopback ICMP is not rate-limited, so the port-unreachable reply comes back
                // at once; the timeout only bounds the test if it ever does not.
                let error = await #expect(throws: IOError.self) {
                    try await withTimeout(.seconds(30), on: loop) {
                        try await a.send([1])
                        return try await a.receive(upTo: 8)
                    }
                }
                #expect(error?.errno == .connectionRefused)
                #expect(error?.operation == .receive)
                #expect(error?.address == peerAddress)
                try a.close()
                try peer.close()
            }
        }

        @Test("32 datagrams go out in one batch and come back in batches, each with its own address and truncation",
              arguments: BackendKind.availableHere)
        func batches(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let sender = try loopbackSocket("127.0.0.1", on: loop)
                let b = try loopbackSocket("127.0.0.1", on: loop)
                let c = try loopbackSocket("::1", on: loop)
                let senderV6 = try loopbackSocket("::1", on: loop)
                let senderAddress = try sender.localAddress
                let (bAddress, cAddress) = (try b.localAddress, try c.localAddress)
                try await onLoop(loop) {
                    // Datagram i is i bytes of value i, to b when i is even and to c when odd
                    // (c is IPv6, so its datagrams go through a second batch on an IPv6 socket).
                    var toB = DatagramBatch(capacity: 32, datagramSize: 32)
                    var toC = DatagramBatch(capacity: 32, datagramSize: 32)
                    for index in 0..<32 {
                        let bytes = [UInt8](repeating: UInt8(index), count: index)
                        if index % 2 == 0 { toB.append(bytes, to: bAddress) } else { toC.append(bytes, to: cAddress) }
                    }
                    try await sender.send(batch: toB)
                    try await senderV6.send(batch: toC)

                    // b's batch holds 16 bytes a datagram: those of 18 bytes and more are cut.
                    var toBEntries: [BatchEntry] = []
                    var received = DatagramBatch(capacity: 32, datagramSize: 16)
                    while toBEntries.count < 16 {
                        try await b.receive(batch: &received)
                        toBEntries += entries(of: received)
                    }
                    #expect(toBEntries == stride(from: 0, to: 32, by: 2).map { length in
                        BatchEntry(bytes: [UInt8](repeating: UInt8(length), count: min(length, 16)),
                                   address: senderAddress, isTruncated: length > 16)
                    })

                    // c's batch is smaller than what waits: it takes two receives at least.
                    var toCEntries: [BatchEntry] = []
                    var small = DatagramBatch(capacity: 8, datagramSize: 64)
                    while toCEntries.count < 16 {
                        try await c.receive(batch: &small)
                        toCEntries += entries(of: small)
                    }
                    let senderV6Address = try senderV6.localAddress
                    #expect(toCEntries == stride(from: 1, to: 32, by: 2).map { length in
                        BatchEntry(bytes: [UInt8](repeating: UInt8(length), count: length), address: senderV6Address)
                    })
                }
                try sender.close()
                try senderV6.close()
                try b.close()
                try c.close()
            }
        }

        @Test("a batch without addresses goes to the connected peer", arguments: BackendKind.availableHere)
        func connectedBatch(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let a = try loopbackSocket("127.0.0.1", on: loop)
                let b = try loopbackSocket("127.0.0.1", on: loop)
                try a.connect(to: try b.localAddress)
                let aAddress = try a.localAddress
                try await onLoop(loop) {
                    var batch = DatagramBatch(capacity: 32, datagramSize: 4)
                    for index in 0..<32 { batch.append(withUnsafeBytes(of: UInt32(index)) { Array($0) }) }
                    try await a.send(batch: batch)
                    batch.removeAll()
                    var received: [BatchEntry] = []
                    while received.count < 32 {
                        try await b.receive(batch: &batch)
                        received += entries(of: batch)
                    }
                    #expect(received == (0..<32).map { index in
                        BatchEntry(bytes: withUnsafeBytes(of: UInt32(index)) { Array($0) }, address: aAddress)
                    })
                }
                try a.close()
                try b.close()
            }
        }

        @Test("IPv4 multicast on loopback: join, receive what the group is sent, leave", arguments: BackendKind.availableHere)
        func multicastIPv4(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let group = SocketAddress.ipv4(239, 255, UInt8.random(in: 0...255), UInt8.random(in: 1...254), port: 0)
                // Bound to the group's address, the receiver hears that group only.
                let receiver = try UDPSocket.bind(to: group, on: loop)
                let groupPort = try SocketAddress(ipAddress: group.host!, port: try receiver.localAddress.port!)
                try receiver.join(group: group, interfaceIndex: loopbackIndex)

                let sender = try loopbackSocket("127.0.0.1", on: loop)
                try sender.setMulticastInterface(loopbackIndex)
                try sender.setOption(.ipv4MulticastLoop, to: true)
                #expect(try sender.option(.ipv4MulticastLoop))
                try sender.setOption(.ipv4MulticastTimeToLive, to: 0)
                #expect(try sender.option(.ipv4MulticastTimeToLive) == 0)

                let datagram = try await withTimeout(.seconds(30), on: loop) {
                    try await sender.send([7, 7], to: groupPort)
                    return try await receiver.receive(upTo: 8)
                }
                #expect(datagram.bytes == [7, 7])
                #expect(datagram.sender == (try sender.localAddress))

                try receiver.leave(group: group, interfaceIndex: loopbackIndex)
                let error = #expect(throws: IOError.self) { try receiver.leave(group: group, interfaceIndex: loopbackIndex) }
                #expect(error?.errno == .addressNotAvailable)
                #expect(error?.operation == .leaveGroup)
                #expect(error?.address == group)
                try receiver.close()
                try sender.close()
            }
        }

        // Delivery is not tested for IPv6: `lo` has no IFF_MULTICAST here, so a send to an
        // IPv6 group through it fails with ENETUNREACH. Joining and leaving work.
        @Test("IPv6 multicast on loopback: join and leave; hop limit and loop options", arguments: BackendKind.availableHere)
        func multicastIPv6(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let socket = try UDPSocket.bind(to: SocketAddress(parsing: "[::]:0"), on: loop)
                let group = try SocketAddress(parsing: "[ff02::1:\(String(UInt16.random(in: 1...0xFFFF), radix: 16))]:0")
                try socket.join(group: group, interfaceIndex: loopbackIndex)
                let twice = #expect(throws: IOError.self) { try socket.join(group: group, interfaceIndex: loopbackIndex) }
                #expect(twice?.errno == .addressInUse)
                #expect(twice?.operation == .joinGroup)
                #expect(twice?.address == group)
                try socket.leave(group: group, interfaceIndex: loopbackIndex)

                try socket.setMulticastInterface(loopbackIndex)
                try socket.setOption(.ipv6MulticastLoop, to: false)
                #expect(try !socket.option(.ipv6MulticastLoop))
                try socket.setOption(.ipv6MulticastHopLimit, to: 5)
                #expect(try socket.option(.ipv6MulticastHopLimit) == 5)
                try socket.close()
            }
        }

        @Test("joining a non-multicast or Unix address fails, naming it", arguments: BackendKind.availableHere)
        func joinInvalid(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let socket = try loopbackSocket("127.0.0.1", on: loop)
                let unicast = SocketAddress.ipv4(127, 0, 0, 1, port: 0)
                let notMulticast = #expect(throws: IOError.self) { try socket.join(group: unicast) }
                #expect(notMulticast?.errno == .invalidArgument)
                #expect(notMulticast?.address == unicast)
                let unix = try SocketAddress.unixAbstract(name: "group")
                let wrongFamily = #expect(throws: IOError.self) { try socket.join(group: unix) }
                #expect(wrongFamily?.errno == .addressFamilyNotSupported)
                try socket.close()
            }
        }

        @Test("broadcast is off until set; a broadcast send without it is refused", arguments: BackendKind.availableHere)
        func broadcast(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let socket = try loopbackSocket("127.0.0.1", on: loop)
                #expect(try !socket.option(.broadcast))
                // Refused before any packet leaves: the socket may not broadcast yet.
                let everyone = SocketAddress.ipv4(255, 255, 255, 255, port: 9)
                let error = await #expect(throws: IOError.self) {
                    try await onLoop(loop) { try await socket.send([1], to: everyone) }
                }
                #expect(error?.errno == .permissionDenied)
                #expect(error?.operation == .send)
                #expect(error?.address == everyone)
                try socket.setOption(.broadcast, to: true)
                #expect(try socket.option(.broadcast))
                try socket.close()
            }
        }

        @Test("binding a port in use fails with EADDRINUSE unless both sockets reuse it", arguments: BackendKind.availableHere)
        func bindErrors(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let first = try UDPSocket.bind(to: .ipv4(127, 0, 0, 1, port: 0), reusePort: true, on: loop)
                let address = try first.localAddress
                let inUse = #expect(throws: IOError.self) { try UDPSocket.bind(to: address, on: loop) }
                #expect(inUse?.errno == .addressInUse)
                #expect(inUse?.operation == .bind)
                #expect(inUse?.address == address)
                let second = try UDPSocket.bind(to: address, reuseAddress: true, reusePort: true, on: loop)
                #expect(try second.localAddress == address)
                #expect(try second.option(.reuseAddress))

                let unix = try SocketAddress.unixAbstract(name: "udp")
                let wrongFamily = #expect(throws: IOError.self) { try UDPSocket.bind(to: unix, on: loop) }
                #expect(wrongFamily?.errno == .addressFamilyNotSupported)
                try first.close()
                try second.close()
            }
        }

        @Test("cancelling a pending receive resumes it with CancellationError; the socket still works",
              arguments: BackendKind.availableHere)
        func cancelReceive(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let a = try loopbackSocket("127.0.0.1", on: loop)
                let b = try loopbackSocket("127.0.0.1", on: loop)
                let receiving = Task(executorPreference: loop) { try await b.receive(upTo: 8) }
                try await waitUntil { b.descriptor.io.isAwaitingRead }
                receiving.cancel()
                await #expect(throws: CancellationError.self) { try await receiving.value }
                let bAddress = try b.localAddress
                let datagram = try await onLoop(loop) {
                    try await a.send([3], to: bAddress)
                    return try await b.receive(upTo: 8)
                }
                #expect(datagram.bytes == [3])
                try a.close()
                try b.close()
            }
        }

        @Test("closing the socket resumes a pending receive with .closed", arguments: BackendKind.availableHere)
        func closeWhileReceiving(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let socket = try loopbackSocket("127.0.0.1", on: loop)
                let receiving = Task(executorPreference: loop) { try await socket.receive(upTo: 8) }
                try await waitUntil { socket.descriptor.io.isAwaitingRead }
                try socket.close()
                await #expect(throws: ReactorError.closed) { try await receiving.value }
            }
        }
    }
}
