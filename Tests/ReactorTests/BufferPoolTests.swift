import Testing

@testable import Reactor

extension ReactorTests {
    @Suite struct BufferPoolTests {
        @Test("the pool grows to the number lent at once, keeps at most its free limit, and reuses what it keeps")
        func growsAndKeeps() {
            let pool = BufferPool()
            let lent = (0..<BufferPool.freeLimit + 6).map { _ in pool.borrow() }
            #expect(Set(lent).count == lent.count)
            #expect(pool.lentCount == lent.count)
            #expect(pool.freeCount == 0)
            for buffer in lent { pool.giveBack(buffer) }
            #expect(pool.lentCount == 0)
            #expect(pool.freeCount == BufferPool.freeLimit)
            let again = pool.borrow()
            #expect(lent.contains(again))
            #expect(pool.freeCount == BufferPool.freeLimit - 1)
            pool.giveBack(again)
            pool.release()
            #expect(pool.freeCount == 0)
        }

        @Test("filling up allocates, once, every buffer the pool keeps; borrowing up to its limit then allocates none")
        func fillsUp() {
            let pool = BufferPool()
            let first = pool.borrow()
            let second = pool.borrow(fillingUp: true)
            #expect(pool.lentCount == 2)
            #expect(pool.freeCount == BufferPool.freeLimit - 2)
            let rest = (2..<BufferPool.freeLimit).map { _ in pool.borrow(fillingUp: true) }
            #expect(pool.freeCount == 0)
            #expect(Set([first, second] + rest).count == BufferPool.freeLimit)
            for buffer in [first, second] + rest { pool.giveBack(buffer) }
            #expect(pool.freeCount == BufferPool.freeLimit)
            pool.release()
        }

        // The kernel's copy of received bytes runs at about half speed into a destination
        // that is not cache-line aligned.
        @Test("every buffer the pool lends starts on a cache line")
        func cacheLineAligned() {
            let pool = BufferPool()
            let lent = (0..<8).map { _ in pool.borrow(fillingUp: true) }
            for buffer in lent { #expect(Int(bitPattern: buffer) % 64 == 0) }
            for buffer in lent { pool.giveBack(buffer) }
            pool.release()
        }

        @Test("a buffer discarded away from the loop is freed, not kept")
        func discard() {
            let pool = BufferPool()
            let buffer = pool.borrow()
            buffer.storeBytes(of: 0xA5, toByteOffset: BufferPool.bufferSize - 1, as: UInt8.self)
            pool.discard(buffer)
            #expect(pool.lentCount == 0)
            #expect(pool.freeCount == 0)
        }
    }
}
