#if os(Linux)
import CReactor
import Synchronization
import SystemPackage

/// A ring of buffers the kernel picks from when data arrives for a read that was
/// submitted without a buffer of its own (`IOSQE_BUFFER_SELECT`): a reader that waits
/// holds no memory, and a buffer is taken only for bytes that came.
///
/// Loop thread only. A buffer the kernel filled belongs to the reader until it hands it
/// back with ``recycle(_:)``; the memory lives as long as this object, so a chunk that
/// outlives its loop still reads valid bytes.
final class ProvidedBuffers {
    /// The group ID reads name; one ring per io_uring instance.
    static let group: UInt16 = 0
    /// The size of each buffer: four times the pool's, so that a stream's 64 KiB write
    /// arrives as one chunk. The memory is the kernel's to fill in ring order, so all
    /// of it becomes resident under load: `count` × 64 KiB per loop.
    static let bufferSize = 64 * 1024

    let count: Int
    private let entries: UnsafeMutablePointer<creactor_buffer_entry>
    private let memory: UnsafeMutableRawPointer
    private var tail: UInt16 = 0
    /// Buffers the kernel filled that were not handed back yet; atomic so that tests
    /// may look from any thread.
    private let lent = Atomic<Int>(0)
    private var isRegistered = true

    /// Registers `count` buffers (a power of two, at most 32,768) with the ring `fd`.
    ///
    /// - Throws: the registration's `Errno` (`EINVAL` before Linux 5.19, where the
    ///   backend is then unavailable and loops run epoll).
    init(ring fd: CInt, count: Int) throws(Errno) {
        precondition(count > 0 && count & (count - 1) == 0 && count <= 1 << 15)
        self.count = count
        let page = 4096
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: count * MemoryLayout<creactor_buffer_entry>.stride, alignment: page)
        entries = raw.bindMemory(to: creactor_buffer_entry.self, capacity: count)
        entries.initialize(repeating: creactor_buffer_entry(), count: count)
        memory = .allocate(byteCount: count * Self.bufferSize, alignment: 16)
        // Bound as the pool's buffers are: chunks read their bytes as UInt8.
        memory.bindMemory(to: UInt8.self, capacity: count * Self.bufferSize)
        let result = creactor_uring_register_buffer_ring(fd, entries, UInt32(count), Self.group)
        guard result == 0 else {
            entries.deallocate()
            memory.deallocate()
            throw Errno(rawValue: -result)
        }
        for id in 0..<count { add(UInt16(id)) }
        creactor_publish_buffer_tail(entries, tail)
    }

    deinit {
        entries.deallocate()
        memory.deallocate()
    }

    /// Where buffer `id` starts.
    func pointer(_ id: UInt16) -> UnsafeMutableRawPointer {
        memory + Int(id) * Self.bufferSize
    }

    /// Records that the kernel filled buffer `id` for a reader.
    func take(_ id: UInt16) {
        lent.add(1, ordering: .relaxed)
    }

    /// Buffers the kernel filled that were not handed back yet.
    var inUse: Int { lent.load(ordering: .relaxed) }

    /// Hands buffer `id` back to the kernel.
    func recycle(_ id: UInt16) {
        lent.subtract(1, ordering: .relaxed)
        guard isRegistered else { return }
        add(id)
        // Release: the entry is written before the kernel sees the tail that covers it.
        creactor_publish_buffer_tail(entries, tail)
    }

    /// Records that buffer `id` is no longer lent, without handing it back: for a chunk
    /// that ends after the ring was unregistered, on any thread.
    func forget(_ id: UInt16) {
        lent.subtract(1, ordering: .relaxed)
    }

    /// Stops the kernel using the ring; called before the io_uring instance closes.
    func unregister(ring fd: CInt) {
        guard isRegistered else { return }
        isRegistered = false
        _ = creactor_uring_unregister_buffer_ring(fd, Self.group)
    }

    /// Writes buffer `id` at the tail. Field by field: the first entry's last two bytes
    /// are the ring's tail.
    private func add(_ id: UInt16) {
        let entry = entries + Int(tail & UInt16(count - 1))
        entry.pointee.addr = UInt64(UInt(bitPattern: pointer(id)))
        entry.pointee.len = UInt32(Self.bufferSize)
        entry.pointee.bid = id
        tail &+= 1
    }
}
#endif
