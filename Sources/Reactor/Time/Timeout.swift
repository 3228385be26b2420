/// Thrown by ``withTimeout(_:on:operation:)`` and ``withDeadline(_:on:operation:)``
/// when the time ran out before the operation finished.
public struct TimeoutError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The deadline that passed.
    public let deadline: LoopClock.Instant

    /// A sentence saying what happened.
    public var description: String { "the operation did not finish before its deadline" }
}

/// Runs `operation`, and cancels it if it has not finished after `timeout`.
///
/// ```swift
/// let count = try await withTimeout(.seconds(2)) { try await reader.read(into: &buffer) }
/// ```
///
/// The operation runs as a child task on the same executor preference as the caller,
/// and is awaited even when it is cancelled, so nothing it uses outlives this call.
///
/// - Parameters:
///   - timeout: how long the operation may take; rounded up to the loop's tick.
///   - loop: whose timer measures it; by default the calling thread's loop, or one of
///     the default group's.
///   - operation: the work to bound. It should react to cancellation (every Reactor
///     await does).
/// - Returns: what `operation` returns.
/// - Throws: ``TimeoutError`` if the time ran out (whatever the cancelled operation then
///   threw); otherwise what `operation` throws.
public func withTimeout<Result: Sendable>(
    _ timeout: Duration,
    on loop: EventLoop? = nil,
    operation: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    let loop = try loop ?? EventLoop.currentOrDefault()
    return try await withDeadline(loop.clock.now.advanced(by: timeout), on: loop, operation: operation)
}

/// Runs `operation`, and cancels it if it has not finished by `deadline`.
/// See ``withTimeout(_:on:operation:)``.
public func withDeadline<Result: Sendable>(
    _ deadline: LoopClock.Instant,
    on loop: EventLoop? = nil,
    operation: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    let clock = try (loop ?? EventLoop.currentOrDefault()).clock
    // The group's children yield the operation's result, or nil when the timer won.
    return try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await clock.sleep(until: deadline)
            return nil
        }
        defer { group.cancelAll() }
        guard let result = try await group.next()! else { throw TimeoutError(deadline: deadline) }
        return result
    }
}
