/// Names a pending timer: its entry and that entry's generation, so that cancelling
/// a timer that already fired (and whose entry was reused) does nothing.
struct TimerID: Hashable, Sendable {
    let index: Int32
    let generation: UInt32

    /// Names no timer: cancelling it does nothing.
    static let none = TimerID(index: -1, generation: 0)
}

/// A hierarchical timing wheel: six levels of 64 slots over ticks, each level 64 times
/// coarser than the one below, spanning 64^6 ticks.
///
///     level | one slot spans | the level spans
///       0   |       1 tick   |        64 ticks
///       1   |      64 ticks  |     4,096 ticks
///       2   |   4,096 ticks  |   262,144 ticks
///       …   |        …       |         …
///
/// A timer sits at the lowest level whose slot still separates its deadline from the
/// wheel's position. Reaching a slot at a higher level cascades its timers down, so
/// every timer fires from level 0 in the tick it is due. Scheduling and cancelling are
/// O(1): entries live in a slab and form intrusive doubly linked lists, one per slot,
/// and a cancelled timer is unlinked on the spot, leaving nothing to skip later.
///
/// Loop thread only. Timers due in the same tick fire in the order they were scheduled.
struct TimerWheel<Payload> {
    private static var levels: Int { 6 }
    private static var slotBits: UInt64 { 6 }
    private static var slotsPerLevel: Int { 64 }
    /// The list of timers already due when scheduled; they fire at the next expiry.
    private static var dueList: Int { levels * slotsPerLevel }

    private struct Entry {
        var deadline: UInt64
        var generation: UInt32
        var list: Int32
        var previous: Int32
        var next: Int32
        var payload: Payload?
    }

    private var entries: [Entry] = []
    private var freeEntries: [Int32] = []
    /// Head and tail of each slot's list, and of the due list last.
    private var heads = [Int32](repeating: -1, count: 6 * 64 + 1)
    private var tails = [Int32](repeating: -1, count: 6 * 64 + 1)
    /// Bit `s` of `occupied[l]` is set while slot `s` of level `l` holds a timer.
    private var occupied = [UInt64](repeating: 0, count: 6)

    /// The tick the wheel has reached: every timer due at or before it has fired.
    private(set) var elapsed: UInt64 = 0
    /// The number of pending timers.
    private(set) var count = 0

    /// Schedules `payload` for `deadline` (a tick). A deadline at or before
    /// ``elapsed`` is due at once.
    mutating func schedule(at deadline: UInt64, _ payload: Payload) -> TimerID {
        let index: Int32
        if let reused = freeEntries.popLast() {
            index = reused
            entries[Int(index)].deadline = deadline
            entries[Int(index)].payload = payload
        } else {
            index = Int32(entries.count)
            entries.append(Entry(deadline: deadline, generation: 0, list: -1, previous: -1, next: -1, payload: payload))
        }
        link(index)
        count += 1
        return TimerID(index: index, generation: entries[Int(index)].generation)
    }

    /// Cancels a pending timer and returns its payload; nil if it already fired or was cancelled.
    mutating func cancel(_ id: TimerID) -> Payload? {
        guard id.index >= 0, Int(id.index) < entries.count,
            entries[Int(id.index)].generation == id.generation,
            entries[Int(id.index)].list >= 0
        else { return nil }
        unlink(id.index)
        return release(id.index)
    }

    /// The earliest tick at which ``nextExpired(at:)`` may have work: the deadline of a
    /// level-0 slot, or the start of a higher slot that must cascade. Nil when empty.
    var nextExpiry: UInt64? {
        if heads[Self.dueList] >= 0 { return elapsed }
        return nextSlot()?.tick
    }

    /// The next occupied slot the wheel will reach, and the tick at which it does.
    /// Levels are searched from the finest: every timer at a finer level is due before
    /// any slot of a coarser level begins.
    private func nextSlot() -> (tick: UInt64, level: Int, slot: Int)? {
        for level in 0..<Self.levels where occupied[level] != 0 {
            let shift = UInt64(level) * Self.slotBits
            let current = (elapsed >> shift) & 63
            let levelStart = elapsed & ~((1 << (shift + Self.slotBits)) &- 1)
            // Below the top level every timer lies in a slot after the current one. The
            // top level also holds deadlines past its span, whose slots wrap around.
            let ahead = occupied[level] & ~((2 << current) &- 1)
            if ahead != 0 {
                let slot = ahead.trailingZeroBitCount
                return (levelStart + (UInt64(slot) << shift), level, slot)
            }
            let slot = occupied[level].trailingZeroBitCount
            return (levelStart + (64 << shift) + (UInt64(slot) << shift), level, slot)
        }
        return nil
    }

    /// Advances the wheel to `now` and returns one timer that is due, or nil when none
    /// is due at `now`. Call it until nil; timers scheduled meanwhile are seen too.
    mutating func nextExpired(at now: UInt64) -> Payload? {
        while true {
            if heads[Self.dueList] >= 0 { return release(popHead(of: Self.dueList)) }
            guard let (tick, level, slot) = nextSlot(), tick <= now else {
                if now > elapsed { elapsed = now }
                return nil
            }
            elapsed = tick
            // Every timer of the slot just reached moves on: the due ones to the due
            // list, the others down to a finer level, or (past the top level's span)
            // back into the top level. The list is detached first for that last case.
            let list = level * Self.slotsPerLevel + slot
            var index = heads[list]
            heads[list] = -1
            tails[list] = -1
            occupied[level] &= ~(1 << UInt64(slot))
            while index >= 0 {
                let next = entries[Int(index)].next
                link(index)
                index = next
            }
        }
    }

    /// Takes out every pending timer, in no particular order (for shutdown).
    mutating func removeAll() -> [Payload] {
        var payloads: [Payload] = []
        for list in heads.indices {
            while heads[list] >= 0 { payloads.append(release(popHead(of: list))) }
        }
        return payloads
    }

    /// The level and slot where the wheel keeps a timer due at `deadline`.
    private func position(of deadline: UInt64) -> (level: Int, slot: Int) {
        let differing = (elapsed ^ deadline) | 63
        let significant = 63 - differing.leadingZeroBitCount
        let level = Swift.min(significant / Int(Self.slotBits), Self.levels - 1)
        let slot = Int((deadline >> (UInt64(level) * Self.slotBits)) & 63)
        return (level, slot)
    }

    private mutating func link(_ index: Int32) {
        let deadline = entries[Int(index)].deadline
        let list: Int
        if deadline <= elapsed {
            list = Self.dueList
        } else {
            let (level, slot) = position(of: deadline)
            list = level * Self.slotsPerLevel + slot
            occupied[level] |= 1 << UInt64(slot)
        }
        entries[Int(index)].list = Int32(list)
        entries[Int(index)].next = -1
        entries[Int(index)].previous = tails[list]
        if tails[list] >= 0 { entries[Int(tails[list])].next = index } else { heads[list] = index }
        tails[list] = index
    }

    private mutating func unlink(_ index: Int32) {
        let entry = entries[Int(index)]
        let list = Int(entry.list)
        if entry.previous >= 0 { entries[Int(entry.previous)].next = entry.next } else { heads[list] = entry.next }
        if entry.next >= 0 { entries[Int(entry.next)].previous = entry.previous } else { tails[list] = entry.previous }
        if heads[list] < 0, list != Self.dueList {
            occupied[list / Self.slotsPerLevel] &= ~(1 << UInt64(list % Self.slotsPerLevel))
        }
        entries[Int(index)].list = -1
    }

    private mutating func popHead(of list: Int) -> Int32 {
        let index = heads[list]
        unlink(index)
        return index
    }

    /// Frees an unlinked entry and hands back its payload.
    private mutating func release(_ index: Int32) -> Payload {
        let payload = entries[Int(index)].payload.take()!
        entries[Int(index)].generation &+= 1
        freeEntries.append(index)
        count -= 1
        return payload
    }
}
