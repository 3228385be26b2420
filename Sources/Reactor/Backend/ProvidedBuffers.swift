#if os(Linux)
import CReactor
import Glibc
import SystemPackage

/// A ring of buffers the kernel picks from when data arrives for a read that was
/// submitted without a buffer of its own (`IOSQE_BUFFER_SELECT`): a reader that waits
/// holds no memory, and ring memory is taken only for bytes that came.
///
/// Where the kernel has it (Linux 6.12), the ring consumes its buffers incrementally
/// (`IOU_PBUF_RING_INC`): each read takes only the bytes it brings from the buffer at the
/// ring's head, so that one 64 KiB buffer holds many small messages, of any readers.
/// Elsewhere each read takes a whole buffer. Either way a completion lends its reader a
/// *slice*: the bytes it brought, in one buffer. ``ProvidedBufferLedger`` keeps the
/// account of which buffers the kernel is done with and how many slices are out.
///
/// Loop thread only, but for ``inUse`` and ``forget(_:)``. A slice belongs to its reader
/// until it hands it back with ``recycle(_:)``; the memory lives as long as this object,
/// so a chunk that outlives its loop still reads valid bytes.
final class ProvidedBuffers {
    /// The group ID reads name; one ring per io_uring instance.
    static let group: UInt16 = 0
    /// The size of each buffer: four times the pool's, so that a stream's 64 KiB write
    /// arrives as one chunk. The memory is the kernel's to fill in ring order, so all
    /// of it becomes resident under load: `count` × 64 KiB per loop.
    static let bufferSize = 64 * 1024

    let count: Int
    /// The io_uring instance the ring is registered with.
    private let ring: CInt
    private let entries: UnsafeMutablePointer<creactor_buffer_entry>
    private let memory: UnsafeMutableRawPointer
    private var tail: UInt16 = 0
    /// Which buffers the kernel is done with, where it writes next, and the slices out.
    private(set) var ledger: ProvidedBufferLedger
    /// Slices lent and not handed back yet; any thread may read it (tests do).
    private let lent = LoopCounter()
    private var isRegistered = true

    /// Registers `count` buffers (a power of two, at most 32,768) with the ring `fd`;
    /// `incremental` asks for incremental consumption, and falls back to whole buffers
    /// where the kernel refuses it.
    ///
    /// - Throws: the registration's `Errno` (`EINVAL` before Linux 5.19, where the
    ///   backend is then unavailable and loops run epoll).
    init(ring fd: CInt, count: Int, incremental: Bool) throws(Errno) {
        precondition(count > 0 && count & (count - 1) == 0 && count <= 1 << 15)
        self.count = count
        ring = fd
        let page = 4096
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: count * MemoryLayout<creactor_buffer_entry>.stride, alignment: page)
        entries = raw.bindMemory(to: creactor_buffer_entry.self, capacity: count)
        entries.initialize(repeating: creactor_buffer_entry(), count: count)
        // Page aligned, so every 64 KiB buffer starts on a cache line too, as receive
        // buffers must (the reason is at `BufferPool.alignment`, a layer up).
        memory = .allocate(byteCount: count * Self.bufferSize, alignment: page)
        // Bound as the pool's buffers are: chunks read their bytes as UInt8.
        memory.bindMemory(to: UInt8.self, capacity: count * Self.bufferSize)
        var result = -EINVAL
        var isIncremental = incremental
        // A kernel before 6.12 refuses the flag with EINVAL: that one gets whole buffers.
        if incremental {
            result = creactor_uring_register_buffer_ring(fd, entries, UInt32(count), Self.group, CREACTOR_IOU_PBUF_RING_INC)
        }
        if result == -EINVAL {
            isIncremental = false
            result = creactor_uring_register_buffer_ring(fd, entries, UInt32(count), Self.group, 0)
        }
        guard result == 0 else {
            entries.deallocate()
            memory.deallocate()
            throw Errno(rawValue: -result)
        }
        ledger = ProvidedBufferLedger(count: count, bufferSize: Self.bufferSize, incremental: isIncremental)
        for id in 0..<count { add(UInt16(id)) }
        creactor_publish_buffer_tail(entries, tail)
    }

    deinit {
        entries.deallocate()
        memory.deallocate()
    }

    /// Whether each read takes only the bytes it brings (`IOU_PBUF_RING_INC`).
    var isIncremental: Bool { ledger.isIncremental }

    /// Where buffer `id` starts.
    func pointer(_ id: UInt16) -> UnsafeMutableRawPointer {
        memory + Int(id) * Self.bufferSize
    }

    /// Where the bytes that `completion` brought start, in the provided buffer it names.
    func bytes(of completion: Completion) -> UnsafeMutableRawPointer {
        guard let id = completion.providedBuffer else { preconditionFailure("a completion without a provided buffer") }
        return pointer(id) + Int(completion.bufferOffset)
    }

    /// Accounts for the provided buffer `completion` names, as the completion is drained:
    /// a completion that brought bytes lends them to its reader as a slice, and records
    /// where they start. One that brought none leaves with no buffer, so that its reader
    /// has nothing to hand back.
    func take(from completion: inout Completion) {
        guard let id = completion.providedBuffer else { return }
        let offset = ledger.record(id, result: completion.result, kernelKeepsIt: completion.bufferHasMore)
        if let offset {
            lent.increment()
            completion.bufferOffset = UInt32(offset)
        }
        guard completion.result <= 0 else { return }
        // An empty read in whole-buffer mode still took its buffer: it goes back at once.
        if offset != nil { recycle(id) }
        completion.flags &= ~CREACTOR_IORING_CQE_F_BUFFER
    }

    /// Slices lent and not handed back yet: in whole-buffer mode, buffers.
    var inUse: Int { lent.value }

    /// Hands back a slice of buffer `id`; the buffer goes back to the kernel once the
    /// kernel is done with it and every slice of it came back.
    func recycle(_ id: UInt16) {
        lent.decrement()
        guard isRegistered, ledger.giveBack(id) else { return }
        add(id)
        // Release: the entry is written before the kernel sees the tail that covers it.
        creactor_publish_buffer_tail(entries, tail)
    }

    /// Records that a slice of buffer `id` is no longer lent, without handing it back: for
    /// a chunk that ends after the ring was unregistered, on any thread.
    func forget(_ id: UInt16) {
        lent.decrementElsewhere()
    }

    /// Stops the kernel using the ring; called before the io_uring instance closes.
    func unregister() {
        guard isRegistered else { return }
        isRegistered = false
        _ = creactor_uring_unregister_buffer_ring(ring, Self.group)
    }

    /// How many buffers the ring holds by the kernel's count: the tail published here
    /// minus the head it reports (Linux 6.8), or nil where it cannot say. For tests, to
    /// hold against the ledger's.
    var kernelRingCount: Int? {
        let head = creactor_uring_buffer_ring_head(ring, Self.group)
        guard head >= 0 else { return nil }
        return Int(tail &- UInt16(head))
    }

    /// Writes buffer `id`, whole, at the tail. Field by field: the first entry's last two
    /// bytes are the ring's tail.
    private func add(_ id: UInt16) {
        let entry = entries + Int(tail & UInt16(count - 1))
        entry.pointee.addr = UInt64(UInt(bitPattern: pointer(id)))
        entry.pointee.len = UInt32(Self.bufferSize)
        entry.pointee.bid = id
        tail &+= 1
    }
}
#endif
