/// A buffer of an event loop held for a reader: one of the loop's pool, a slice of a
/// provided buffer of its io_uring ring, which goes back to the kernel instead, or a copy
/// that a receive queue made of bytes it keeps without holding ring memory.
enum LentBuffer {
    /// A ``BufferPool`` buffer of ``BufferPool/bufferSize`` bytes, where it starts.
    case pool(UnsafeMutableRawPointer)
    /// A slice of the provided buffer with this ID: the bytes one completion brought (see
    /// `ProvidedBuffers`).
    case provided(UInt16)
    /// Memory of its own, bound to `UInt8`, freed when it goes back.
    case copy(UnsafeMutableRawPointer)
}

extension EventLoop {
    /// Takes back `buffer`, from any thread: the pool's free list is this loop's, so a
    /// buffer returned on another thread (a task that outlived its loop) is freed
    /// instead; the ring takes its slices back with its next wait.
    func giveBack(_ buffer: LentBuffer) {
        switch buffer {
        case .pool(let pointer):
            if isCurrent { buffers.giveBack(pointer) } else { buffers.discard(pointer) }
        case .provided(let id):
            completions?.recycle(id)
        case .copy(let pointer):
            pointer.deallocate()
        }
    }
}
