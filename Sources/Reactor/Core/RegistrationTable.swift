/// Maps tokens to live registrations: a slab of slots, each with a generation.
///
/// Freeing a slot bumps its generation, so a token handed out before is stale from
/// then on; ``lookUp(_:)`` answers nil for it, and the event that carried it is
/// dropped instead of waking whoever owns the slot next.
struct RegistrationTable: ~Copyable {
    private struct Slot {
        var generation: UInt32
        var io: ScheduledIO?
    }

    private var slots: [Slot] = []
    private var free: [Int] = []
    private(set) var count = 0

    /// Reserves a slot and stores what `make` builds for its token.
    mutating func insert(_ make: (Token) -> ScheduledIO) -> ScheduledIO {
        let index: Int
        if let reused = free.popLast() {
            index = reused
        } else {
            index = slots.count
            slots.append(Slot(generation: 0, io: nil))
        }
        let io = make(Token(index: index, generation: slots[index].generation))
        slots[index].io = io
        count += 1
        return io
    }

    func lookUp(_ token: Token) -> ScheduledIO? {
        guard token.index < slots.count else { return nil }
        let slot = slots[token.index]
        return slot.generation == token.generation ? slot.io : nil
    }

    /// Frees the slot of `token`; a stale token frees nothing.
    mutating func remove(_ token: Token) {
        guard lookUp(token) != nil else { return }
        slots[token.index].io = nil
        slots[token.index].generation &+= 1
        free.append(token.index)
        count -= 1
    }

    /// Every live registration.
    func forEach(_ body: (ScheduledIO) -> Void) {
        for slot in slots { if let io = slot.io { body(io) } }
    }
}
