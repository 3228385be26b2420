/// Names a registration: a slot index and the generation of that slot.
///
/// A slot is reused after its registration goes away, with its generation bumped,
/// so an event that still carries the old token is recognised as stale and dropped
/// (the ABA guard). The whole token fits the 64 bits of epoll's user data.
struct Token: Hashable, Sendable {
    let rawValue: UInt64

    init(rawValue: UInt64) { self.rawValue = rawValue }

    init(index: Int, generation: UInt32) {
        rawValue = UInt64(generation) << 32 | UInt64(UInt32(index))
    }

    var index: Int { Int(UInt32(truncatingIfNeeded: rawValue)) }
    var generation: UInt32 { UInt32(truncatingIfNeeded: rawValue >> 32) }

    /// Reserved for the backend's own wake-up descriptor; no slot has it.
    static let wakeUp = Token(rawValue: .max)
}
