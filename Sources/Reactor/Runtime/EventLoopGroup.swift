#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A fixed set of event loops, one thread each, handed out round-robin.
///
/// ```swift
/// try await withEventLoopGroup(loopCount: 2) { group in
///     let loop = group.next()
///     try await Task(executorPreference: loop) {
///         try await loop.clock.sleep(for: .milliseconds(5))
///     }.value
/// }
/// ```
///
/// Shut a group down when done with it (``withEventLoopGroup(loopCount:backend:_:)``
/// does): its threads run until then.
public final class EventLoopGroup: Sendable {
    /// The group's loops, in the order ``next()`` hands them out.
    public let loops: [EventLoop]
    private let cursor = Atomic<Int>(0)
    private let heirs = Locked<[ObjectIdentifier: EventLoop]>([:])

    /// The number of loops a group gets by default: one per online processor.
    public static var defaultLoopCount: Int {
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// Starts `loopCount` loops on `backend`.
    ///
    /// - Throws: ``IOError`` if a backend or a thread cannot be created; the loops
    ///   already started are shut down first.
    public init(loopCount: Int = EventLoopGroup.defaultLoopCount, backend: BackendKind = .default) async throws {
        let (loops, failure) = Self.startLoops(loopCount, backend: backend)
        if let failure {
            for loop in loops { await loop.shutDown() }
            throw failure
        }
        self.loops = loops
    }

    /// For the default group, which starts inside a synchronous accessor: loops started
    /// before a failure are stopped without waiting for their threads.
    private init(startingSynchronously loopCount: Int, backend: BackendKind) throws {
        let (loops, failure) = Self.startLoops(loopCount, backend: backend)
        if let failure {
            for loop in loops { Task { await loop.shutDown() } }
            throw failure
        }
        self.loops = loops
    }

    /// Starts `count` loops; on a failure, returns it with the loops already started.
    private static func startLoops(_ count: Int, backend: BackendKind) -> (loops: [EventLoop], failure: (any Error)?) {
        precondition(count > 0, "an event loop group needs at least one loop")
        var loops: [EventLoop] = []
        do {
            for index in 0..<count {
                loops.append(try EventLoop(name: "reactor-\(backend)-\(index)", backend: backend))
            }
        } catch {
            return (loops, error)
        }
        return (loops, nil)
    }

    /// The next loop, round-robin.
    public func next() -> EventLoop {
        loops[cursor.add(1, ordering: .relaxed).oldValue % loops.count]
    }

    /// Stops every loop and waits for their threads to end.
    ///
    /// Every task waiting on a loop's I/O or timers is resumed with
    /// ``ReactorError/loopShutDown``. Tasks that still prefer a stopped loop afterwards
    /// continue on the default group. The default group itself cannot be shut down.
    public func shutdownGracefully() async {
        precondition(self !== Self.sharedGroup.withLock({ $0 }), "the default event loop group cannot be shut down")
        await withTaskGroup(of: Void.self) { group in
            for loop in loops { group.addTask { await loop.shutDown() } }
        }
    }

    // MARK: The default group

    private static let sharedGroup = Locked<EventLoopGroup?>(nil)

    /// The default group, started on first use with one loop per processor on the
    /// default backend, and never shut down.
    ///
    /// Resources created by tasks that do not run on a loop register here. That works
    /// from anywhere, at the cost of a thread hop per event: for the fast path, run the
    /// task on the loop that owns its resources.
    ///
    /// - Throws: ``IOError`` if it cannot start (for example, out of descriptors); a
    ///   later call tries again.
    public static var shared: EventLoopGroup {
        get throws {
            try sharedGroup.withLock { group in
                if let group { return group }
                let started = try EventLoopGroup(startingSynchronously: defaultLoopCount, backend: .default)
                group = started
                return started
            }
        }
    }

    /// The loop that takes over the jobs of `stopped`, always the same one, so that
    /// an actor's jobs keep running one at a time.
    func heir(of stopped: EventLoop) -> EventLoop {
        heirs.withLock { heirs in
            if let heir = heirs[ObjectIdentifier(stopped)] { return heir }
            let heir = next()
            heirs[ObjectIdentifier(stopped)] = heir
            return heir
        }
    }
}

/// Runs `body` with a new group of loops, and shuts the group down when `body` ends,
/// whether it returns or throws.
///
/// - Parameters:
///   - loopCount: how many loops (threads); one per processor by default.
///   - backend: the OS mechanism they wait on.
///   - body: receives the group.
/// - Throws: ``IOError`` if the group cannot start, or what `body` throws.
public func withEventLoopGroup<Result>(
    loopCount: Int = EventLoopGroup.defaultLoopCount,
    backend: BackendKind = .default,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (EventLoopGroup) async throws -> Result
) async throws -> Result {
    let group = try await EventLoopGroup(loopCount: loopCount, backend: backend)
    do {
        let result = try await body(group)
        await group.shutdownGracefully()
        return result
    } catch {
        await group.shutdownGracefully()
        throw error
    }
}
