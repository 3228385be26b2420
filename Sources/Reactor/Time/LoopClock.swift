import CReactor

/// The clock of one event loop: monotonic time, with sleeps driven by that loop's
/// timer wheel instead of a thread or a timer descriptor per sleep.
///
/// ```swift
/// try await loop.clock.sleep(for: .milliseconds(5))
/// ```
///
/// Deadlines round up to the wheel's tick of one millisecond, so a sleep never ends
/// early. A sleep started on the loop's own thread costs no allocation and no syscall;
/// one started elsewhere hops onto the loop and back.
public struct LoopClock: Clock {
    /// A point in monotonic time (`CLOCK_MONOTONIC`), in nanoseconds.
    public struct Instant: InstantProtocol, Hashable, Sendable, CustomStringConvertible {
        /// Nanoseconds since an unspecified point (the system's boot, on Linux).
        public let nanoseconds: UInt64

        /// Creates an instant from a `CLOCK_MONOTONIC` reading in nanoseconds.
        public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

        /// The current monotonic time.
        public static var now: Instant { Instant(nanoseconds: creactor_monotonic_ns()) }

        /// The instant `duration` later (earlier, if negative), clamped to the representable range.
        public func advanced(by duration: Duration) -> Instant {
            let (seconds, attoseconds) = duration.components
            let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
            let delta = overflow ? (seconds < 0 ? Int64.min : Int64.max) : whole.addingClamped(attoseconds / 1_000_000_000)
            return Instant(nanoseconds: UInt64(clamping: Int64(clamping: nanoseconds).addingClamped(delta)))
        }

        /// The time from this instant to `other`; negative if `other` is earlier.
        public func duration(to other: Instant) -> Duration {
            .nanoseconds(Int64(bitPattern: other.nanoseconds &- nanoseconds))
        }

        /// Whether `lhs` comes before `rhs`.
        public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

        /// The reading in nanoseconds.
        public var description: String { "\(nanoseconds) ns" }
    }

    /// The loop whose wheel drives this clock's sleeps.
    public let loop: EventLoop

    /// The current monotonic time.
    public var now: Instant { .now }

    /// One tick of the timer wheel.
    public var minimumResolution: Duration { .milliseconds(1) }

    /// Suspends until `deadline` (rounded up to the next tick).
    ///
    /// - Parameter tolerance: ignored; the wheel's tick is the tolerance.
    /// - Throws: `CancellationError` if the task is cancelled first, at once if it already
    ///   was; ``ReactorError/loopShutDown`` if the loop shuts down first.
    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        try Task.checkCancellation()
        if EventLoop.current === loop {
            try await loop.sleepOnLoop(until: deadline)
        } else {
            try await loop.hop { loop in try await loop.sleepOnLoop(until: deadline) }
        }
    }
}

extension Int64 {
    /// The sum, or the nearest bound when it does not fit.
    fileprivate func addingClamped(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other < 0 ? .min : .max) : sum
    }
}
