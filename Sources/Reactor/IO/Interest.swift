/// The directions a task can wait on.
public struct Interest: OptionSet, Hashable, Sendable {
    /// The directions as bits.
    public let rawValue: UInt8
    /// Creates a set of directions from its bits.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The descriptor can be read from (or has reached end-of-file or an error).
    public static let readable = Interest(rawValue: 1 << 0)
    /// The descriptor can be written to (or its reader went away, or it has an error).
    public static let writable = Interest(rawValue: 1 << 1)
}

/// What a wait on an ``AsyncFD`` observed. Hand it back to
/// ``AsyncFD/clearReadiness(_:)`` when the operation it allowed found nothing to do
/// (`EAGAIN`), so the next wait blocks until the next event.
public struct ReadinessEvent: Sendable {
    /// The direction that was waited for.
    public let interest: Interest
    let snapshot: ScheduledIO.Snapshot

    /// The peer will send nothing more (end-of-file, `EPOLLRDHUP` or `EPOLLHUP`).
    public var isReadClosed: Bool { snapshot.readiness.contains(.readClosed) }
    /// The other end can take nothing more (`EPOLLHUP`).
    public var isWriteClosed: Bool { snapshot.readiness.contains(.writeClosed) }
    /// The descriptor has a pending error (`EPOLLERR`); the next operation reports it.
    public var hasError: Bool { snapshot.readiness.contains(.error) }
}

extension Interest {
    /// The readiness bits that end a wait in this direction: its own, and the sticky ones
    /// that concern it.
    var wakeMask: Readiness {
        self == .readable ? [.readable, .readClosed, .error] : [.writable, .writeClosed, .error]
    }

    var readiness: Readiness { self == .readable ? .readable : .writable }

    /// Every direction in the set, as readiness bits.
    var readinessSet: Readiness {
        var readiness: Readiness = []
        if contains(.readable) { readiness.insert(.readable) }
        if contains(.writable) { readiness.insert(.writable) }
        return readiness
    }
}
