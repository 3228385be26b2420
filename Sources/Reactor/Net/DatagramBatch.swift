#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Room for many datagrams, each with its own address, that a ``DatagramSocket`` sends or
/// receives with one syscall: ``DatagramSocket/send(batch:)`` and
/// ``DatagramSocket/receive(batch:)``.
///
/// ```swift
/// var batch = DatagramBatch(capacity: 64, datagramSize: 1_500)
/// try await socket.receive(batch: &batch)
/// for index in 0..<batch.count {
///     batch.withBytes(at: index) { bytes in handle(bytes, from: batch.address(at: index)!) }
/// }
/// ```
///
/// A batch allocates its memory once, when it is made, so that sending and receiving
/// with it allocates nothing. It is noncopyable: that memory has one owner, which may
/// hand it to another task.
public struct DatagramBatch: ~Copyable, @unchecked Sendable {
    // `@unchecked Sendable`: the memory below is reached only through this value, and a
    // noncopyable value is in one place at a time.
    //
    // Slot `i` is `headers[i]`, which points at `vectors[i]` (the bytes at
    // `payloads + i * datagramSize`) and at `addresses[i]`; those pointers never change.
    // For `i < count`, slot `i` describes datagram `i`: `iov_len` is its length,
    // `msg_name` is nil or points at its `msg_namelen`-byte address, and `msg_flags` holds
    // what the kernel said of it.

    /// How many datagrams the batch holds at most.
    public let capacity: Int
    /// The longest datagram the batch holds, in bytes.
    public let datagramSize: Int
    /// How many datagrams the batch holds now.
    public private(set) var count = 0

    let headers: UnsafeMutablePointer<MultipleMessageHeader>
    private let vectors: UnsafeMutablePointer<iovec>
    private let addresses: UnsafeMutablePointer<sockaddr_storage>
    private let payloads: UnsafeMutableRawPointer

    /// Makes an empty batch.
    ///
    /// - Parameters:
    ///   - capacity: how many datagrams it holds; at least 1. Linux sends or receives at
    ///     most 1,024 per syscall.
    ///   - datagramSize: the longest datagram it holds, in bytes; a longer received one
    ///     is cut to this size. 65,536 holds any UDP datagram; the path's MTU (often
    ///     1,500) is the usual choice.
    public init(capacity: Int, datagramSize: Int) {
        precondition(capacity > 0, "a datagram batch holds at least one datagram")
        precondition(datagramSize >= 0, "a datagram cannot be shorter than 0 bytes")
        precondition(MultipleMessageHeader.matchesC, "MultipleMessageHeader is not laid out as struct mmsghdr")
        self.capacity = capacity
        self.datagramSize = datagramSize
        headers = .allocate(capacity: capacity)
        vectors = .allocate(capacity: capacity)
        addresses = .allocate(capacity: capacity)
        addresses.initialize(repeating: sockaddr_storage(), count: capacity)
        payloads = .allocate(byteCount: max(capacity * datagramSize, 1), alignment: 16)
        for slot in 0..<capacity {
            vectors.advanced(by: slot).initialize(to: iovec(iov_base: payloads + slot * datagramSize, iov_len: 0))
            headers.advanced(by: slot).initialize(to: MultipleMessageHeader(
                header: msghdr(
                    msg_name: nil, msg_namelen: 0, msg_iov: vectors + slot, msg_iovlen: 1,
                    msg_control: nil, msg_controllen: 0, msg_flags: 0),
                length: 0))
        }
    }

    deinit {
        headers.deallocate()
        vectors.deallocate()
        addresses.deallocate()
        payloads.deallocate()
    }

    /// Whether the batch holds no datagram.
    public var isEmpty: Bool { count == 0 }

    /// Adds a datagram to send: copies `bytes` into the batch, with its destination.
    ///
    /// - Parameters:
    ///   - bytes: the datagram: an `UnsafeRawBufferPointer`, an `Array`, or any collection
    ///     of bytes; at most ``datagramSize`` of them.
    ///   - destination: where it goes; nil for the peer set by
    ///     ``DatagramSocket/connect(to:)``.
    /// - Precondition: the batch is not full, and `bytes` fits in ``datagramSize``.
    public mutating func append(_ bytes: some Collection<UInt8>, to destination: SocketAddress? = nil) {
        precondition(count < capacity, "the datagram batch is full (\(capacity) datagrams)")
        let length = bytes.count
        precondition(length <= datagramSize, "a datagram of \(length) bytes does not fit in \(datagramSize)")
        let slot = count
        UnsafeMutableRawBufferPointer(start: vectors[slot].iov_base, count: length).copyBytes(from: bytes)
        vectors[slot].iov_len = length
        if let destination {
            headers[slot].header.msg_name = UnsafeMutableRawPointer(addresses + slot)
            headers[slot].header.msg_namelen = destination.withSockAddr { name, nameLength in
                UnsafeMutableRawPointer(addresses + slot).copyMemory(from: name, byteCount: Int(nameLength))
                return nameLength
            }
        } else {
            headers[slot].header.msg_name = nil
            headers[slot].header.msg_namelen = 0
        }
        headers[slot].header.msg_flags = 0
        count += 1
    }

    /// Empties the batch, keeping its memory for the next datagrams.
    public mutating func removeAll() {
        count = 0
    }

    /// Calls `body` with the bytes of datagram `index`: those appended, or those received
    /// (the start of the datagram when ``isTruncated(at:)``).
    ///
    /// - Parameters:
    ///   - index: which datagram, from 0 to ``count`` - 1.
    ///   - body: reads the bytes; the buffer is valid only during the call.
    /// - Returns: what `body` returns.
    /// - Throws: what `body` throws.
    public func withBytes<Result, Failure: Error>(
        at index: Int, _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let vector = vectors[checked(index)]
        return try body(UnsafeRawBufferPointer(start: vector.iov_base, count: vector.iov_len))
    }

    /// A copy of the bytes of datagram `index`. See ``withBytes(at:_:)``.
    public func bytes(at index: Int) -> [UInt8] {
        withBytes(at: index) { Array($0) }
    }

    /// The address of datagram `index`: its destination when appended (nil for the
    /// connected peer), or its sender when received.
    public func address(at index: Int) -> SocketAddress? {
        let header = headers[checked(index)].header
        guard let name = header.msg_name else { return nil }
        return SocketAddress(receivedFrom: UnsafeRawBufferPointer(start: name, count: Int(header.msg_namelen)))
    }

    /// Whether datagram `index` was received longer than ``datagramSize`` and cut to fit
    /// (`MSG_TRUNC`). False for a datagram appended to send.
    public func isTruncated(at index: Int) -> Bool {
        headers[checked(index)].header.msg_flags & CInt(MSG_TRUNC) != 0
    }

    private func checked(_ index: Int) -> Int {
        precondition(index >= 0 && index < count, "datagram \(index) is not in a batch of \(count)")
        return index
    }

    // MARK: Receiving

    /// Empties the batch and opens every slot to a whole datagram and its sender, as
    /// `recvmmsg(2)` wants them.
    mutating func prepareToReceive() {
        count = 0
        for slot in 0..<capacity {
            vectors[slot].iov_len = datagramSize
            headers[slot].header.msg_name = UnsafeMutableRawPointer(addresses + slot)
            headers[slot].header.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
            headers[slot].header.msg_flags = 0
        }
    }

    /// Takes in the first `received` slots that `recvmmsg(2)` filled: each one's length
    /// is what the kernel wrote, in `msg_len`.
    mutating func finishReceiving(count received: Int) {
        for slot in 0..<received {
            vectors[slot].iov_len = Int(headers[slot].length)
        }
        count = received
    }
}

/// `struct mmsghdr`, which glibc declares only under `_GNU_SOURCE`, so that C cannot hand
/// it to Swift: one message's header, and the byte count the kernel reports for it.
///
/// Swift lays out a struct's stored properties in order, each at its natural alignment,
/// as C does; ``matchesC`` checks that against the C compiler's layout.
struct MultipleMessageHeader {
    var header: msghdr
    var length: CUnsignedInt

    static let matchesC = MemoryLayout<Self>.stride == multipleMessageHeaderLayout.size
        && MemoryLayout<Self>.offset(of: \.length) == multipleMessageHeaderLayout.lengthOffset
}
