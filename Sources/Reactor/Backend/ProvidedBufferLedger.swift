/// The loop's account of each provided buffer: whether the kernel may still pick it or
/// write to it, where it writes next, and how many slices of it readers hold.
///
/// A buffer goes back to the ring once the kernel is done with it and every slice lent
/// from it came back. The kernel's side, from `io_kbuf_commit` in Linux's
/// `io_uring/kbuf.c`:
///
/// - Whole-buffer mode: a completion that names a buffer took it out of the ring, even
///   with a result of 0 (the ring's head moves by one whatever the length).
/// - Incremental mode (`IOU_PBUF_RING_INC`, Linux 6.12): the kernel writes into the
///   buffer at the ring's head from where it stopped last, for any reader, and flags each
///   completion that leaves bytes in it for later `IORING_CQE_F_BUF_MORE`. The completion
///   that fills it up comes without that flag, and the buffer has left the ring. A
///   completion that brought no byte consumed nothing: the buffer stays at the head as it
///   was, with or without the flag. A multishot receive holds no buffer between its
///   completions, so one that ends leaves a partly filled buffer to the next reader.
///
/// In both modes a negative result consumed nothing: the commit skips it (Linux 6.12;
/// older kernels moved the head for it too, and would keep that buffer out of the ring for
/// good, but the reads used here fail with a buffer only on a bad address). Completions
/// that name one buffer come in the order the kernel filled it: `io_req_post_cqe` flushes
/// the deferred completions before it posts a multishot's, so that readers sharing a
/// ring can do this arithmetic. Buffer-selecting reads go to pollable descriptors only
/// (sockets, pipes), whose buffers are committed with the count each read brought; a
/// descriptor that cannot be polled would have the whole buffer committed up front,
/// which this account does not model.
///
/// Loop thread only. Allocates only when it is made.
struct ProvidedBufferLedger: ~Copyable {
    private struct Account {
        /// Where the kernel writes next: the bytes of the next completion naming the buffer
        /// start there (incremental mode; 0 otherwise).
        var offset = 0
        /// Slices lent to readers and not given back.
        var slices = 0
        /// Whether the ring holds the buffer: the kernel may pick it, or go on filling it.
        var inRing = true
    }

    // A plain pointer: Swift 6.3 fails to compile an element of a buffer pointer modified
    // in place inside a noncopyable type, when it builds with the thread sanitizer.
    private let accounts: UnsafeMutablePointer<Account>
    private let bufferSize: Int
    /// Whether the ring was registered with `IOU_PBUF_RING_INC`.
    let isIncremental: Bool
    /// Buffers the ring holds.
    private(set) var inRingCount: Int

    /// An account of `count` buffers of `bufferSize` bytes, all in the ring.
    init(count: Int, bufferSize: Int, incremental: Bool) {
        accounts = .allocate(capacity: count)
        accounts.initialize(repeating: Account(), count: count)
        self.bufferSize = bufferSize
        isIncremental = incremental
        inRingCount = count
    }

    deinit {
        accounts.deallocate()
    }

    /// Records a completion that names buffer `id`, with its result and whether it carried
    /// `IORING_CQE_F_BUF_MORE`. Returns where the bytes it brought start in the buffer,
    /// lent as one slice until ``giveBack(_:)``; nil if it consumed nothing of the buffer.
    /// In whole-buffer mode a result of 0 lends an empty slice: the buffer left the ring.
    mutating func record(_ id: UInt16, result: Int32, kernelKeepsIt: Bool) -> Int? {
        // A negative result skips the commit; an incremental one of 0 bytes moves nothing.
        guard result > 0 || (result == 0 && !isIncremental) else { return nil }
        let index = Int(id)
        precondition(accounts[index].inRing, "a completion named provided buffer \(id), which the ring did not hold")
        let start = accounts[index].offset
        if isIncremental {
            accounts[index].offset += Int(result)
            precondition(accounts[index].offset <= bufferSize, "the kernel wrote past provided buffer \(id)")
        }
        accounts[index].slices += 1
        if !kernelKeepsIt {
            accounts[index].inRing = false
            inRingCount -= 1
        }
        return start
    }

    /// Records that a slice of buffer `id` came back. Returns true when that was the last
    /// one of a buffer the kernel is done with: it counts as in the ring again, empty, and
    /// the caller hands it to the kernel.
    mutating func giveBack(_ id: UInt16) -> Bool {
        let index = Int(id)
        precondition(accounts[index].slices > 0, "a slice of provided buffer \(id) came back twice")
        accounts[index].slices -= 1
        guard accounts[index].slices == 0, !accounts[index].inRing else { return false }
        accounts[index] = Account()
        inRingCount += 1
        return true
    }

    /// Slices of buffer `id` lent and not given back (for tests).
    func slices(of id: UInt16) -> Int { accounts[Int(id)].slices }

    /// Whether the ring holds buffer `id` (for tests).
    func isInRing(_ id: UInt16) -> Bool { accounts[Int(id)].inRing }
}
