/// The bytes one read brought, in a buffer the event loop lends until the iterator of
/// ``ReceivedChunks`` is asked for the next chunk.
///
/// A chunk is a random-access collection of bytes with contiguous storage, so it goes
/// wherever Reactor takes bytes, without a copy:
///
/// ```swift
/// for try await chunk in connection.chunks {
///     try await connection.write(chunk)
/// }
/// ```
///
/// It is valid until the iterator's next call to `next()`, or until the sequence ends;
/// then its buffer goes back to the loop's pool for another reader. Reading a chunk after
/// that traps, rather than returning the bytes of another read: copy out what must
/// outlive it (`Array(chunk)`). A chunk belongs to the loop's thread and is not `Sendable`.
public struct ReceivedChunk: RandomAccessCollection {
    /// A byte.
    public typealias Element = UInt8
    /// An offset from the first byte.
    public typealias Index = Int
    /// A range of the chunk, valid as long as the chunk.
    public typealias SubSequence = Slice<ReceivedChunk>
    /// The valid offsets.
    public typealias Indices = Range<Int>

    private let lease: BufferLease
    private let generation: UInt64
    private let start: UnsafePointer<UInt8>
    /// The number of bytes.
    public let count: Int

    init(lease: BufferLease, count: Int) {
        self.lease = lease
        generation = lease.generation
        // The pool binds its buffers to UInt8 when it allocates them.
        start = UnsafePointer(lease.buffer!.assumingMemoryBound(to: UInt8.self))
        self.count = count
    }

    /// Whether the buffer is still lent to this chunk: false once the iterator moved on.
    var isValid: Bool { lease.generation == generation }

    /// 0.
    public var startIndex: Int { 0 }
    /// ``count``.
    public var endIndex: Int { count }
    /// The valid offsets, `0..<count`.
    public var indices: Range<Int> { 0..<count }

    /// The byte at `position`. Traps if the chunk is no longer valid.
    public subscript(position: Int) -> UInt8 {
        precondition(position >= 0 && position < count, "ReceivedChunk index out of range")
        return contents[position]
    }

    /// Calls `body` with the bytes; the pointer is valid only inside `body`.
    /// Traps if the chunk is no longer valid.
    public func withUnsafeBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(UnsafeRawBufferPointer(contents))
    }

    /// Calls `body` with the bytes, which are always contiguous; the pointer is valid only
    /// inside `body`. Traps if the chunk is no longer valid.
    public func withContiguousStorageIfAvailable<Result>(
        _ body: (UnsafeBufferPointer<UInt8>) throws -> Result
    ) rethrows -> Result? {
        try body(contents)
    }

    /// The bytes, for a caller that holds the chunk while it uses them (a write of it
    /// keeps its iterator from moving on). Traps if the chunk is no longer valid.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(contents) }

    // A chunk whose buffer went back to the pool must not be read: another read may be
    // filling that buffer now.
    private var contents: UnsafeBufferPointer<UInt8> {
        precondition(isValid, "a ReceivedChunk was used after the iterator's next call to next() returned its buffer; copy the bytes out first")
        return UnsafeBufferPointer(start: start, count: count)
    }
}

/// A chunk lives in a buffer of its loop's pool, which only the loop's thread touches.
@available(*, unavailable)
extension ReceivedChunk: Sendable {}
