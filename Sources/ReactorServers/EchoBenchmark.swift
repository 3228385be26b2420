#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Reactor
import Synchronization

/// The client of the echo benchmark: connections that each keep one message in flight,
/// and the round-trip latencies, throughput and server CPU time they measure.
///
/// ```swift
/// let benchmark = EchoBenchmark(connections: 64, messageSize: 64, duration: .seconds(5))
/// let report = try await benchmark.run(against: server.address, clientLoops: clients.loops,
///                                      serverLoops: server.loops)
/// print(report.messagesPerSecond, report.latency.percentile(0.99))
/// ```
///
/// How a run goes:
/// 1. Every connection is opened, on the client loops in turn, before any message moves.
/// 2. Each connection, in a task on its loop, writes ``messageSize`` bytes, reads them back
///    and checks them, and repeats, one message in flight, until the run ends.
/// 3. The warm-up: messages flow for ``warmUp``, and count for nothing.
/// 4. The measured window of ``duration``: the server loops' thread CPU time is read
///    before and after it (by a job on each server loop); every round trip that
///    completes inside it is timed into the connection's ``LatencyHistogram``.
/// 5. Each connection finishes its message in flight, shuts down its writing side, reads
///    the server's end of stream (an echo server closes once it has echoed everything)
///    and closes; the histograms are merged.
///
/// A message allocates nothing: each connection's buffers and histogram are allocated in
/// step 1, and the counters it bumps are its own.
public struct EchoBenchmark: Sendable {
    /// How many connections run at once, each with one message in flight.
    public var connections: Int
    /// The bytes of each message.
    public var messageSize: Int
    /// How long messages flow before the measurement starts; may be zero.
    public var warmUp: Duration
    /// How long the measurement lasts.
    public var duration: Duration

    /// Describes a run.
    ///
    /// - Parameters:
    ///   - connections: at least one.
    ///   - messageSize: at least one byte.
    ///   - warmUp: zero or more.
    ///   - duration: more than zero.
    public init(connections: Int = 64, messageSize: Int = 64, warmUp: Duration = .seconds(1), duration: Duration = .seconds(5)) {
        precondition(connections > 0, "a benchmark needs a connection")
        precondition(messageSize > 0, "a message has at least one byte")
        precondition(warmUp >= .zero && duration > .zero, "a run needs a positive duration")
        self.connections = connections
        self.messageSize = messageSize
        self.warmUp = warmUp
        self.duration = duration
    }

    /// The parts of a run that ``Progress`` reports on.
    public enum Phase: Sendable, Hashable {
        /// Messages flow, and are not measured.
        case warmUp
        /// Messages flow, and are measured.
        case measuring
    }

    /// Where a run is, reported about once a second.
    public struct Progress: Sendable {
        /// The current phase.
        public let phase: Phase
        /// The time spent in the phase so far.
        public let elapsed: Duration
        /// The phase's planned length.
        public let length: Duration
        /// The round trips per second since the last report.
        public let messagesPerSecond: Double
    }

    /// What a run measured.
    public struct Report: Sendable {
        /// The round trips completed in the measured window.
        public let messages: Int
        /// The measured window's actual length.
        public let elapsed: Duration
        /// The round-trip latencies of the messages completed in the window.
        public let latency: LatencyHistogram
        /// The CPU time the server loops' threads used in the window; nil when the run was
        /// given no server loops (an out-of-process server).
        public let serverCPUTime: Duration?

        /// Round trips per second in the measured window.
        public var messagesPerSecond: Double { Double(messages) / elapsed.seconds }

        /// The server loops' CPU time per round trip; nil without server loops, or
        /// without messages.
        public var serverCPUTimePerMessage: Duration? {
            guard let serverCPUTime, messages > 0 else { return nil }
            return serverCPUTime / messages
        }
    }

    /// Thrown when a message comes back different from what was sent.
    public struct CorruptEcho: Error, Sendable, CustomStringConvertible {
        /// The connection's index, from 0.
        public let connection: Int
        /// A sentence saying what happened.
        public var description: String { "connection \(connection) read back bytes it did not send" }
    }

    /// Runs the benchmark against the echo server at `address`.
    ///
    /// Call it from any task: the connections run on `clientLoops`, and the calling task
    /// only sleeps (on a timer of the first client loop), switches the phases and reports
    /// progress.
    ///
    /// - Parameters:
    ///   - address: where the echo server listens.
    ///   - clientLoops: the loops the connections are spread over, in turn.
    ///   - serverLoops: the server's loops, in this process, whose threads' CPU time the
    ///     report gives; empty for a server elsewhere.
    ///   - progress: called on the calling task about once a second.
    /// - Returns: what the measured window saw.
    /// - Throws: ``IOError`` if a connection cannot be opened or fails (for example
    ///   `Errno.connectionReset`); ``ReactorError/endOfStream`` if the server closes a
    ///   connection early; ``CorruptEcho``; `CancellationError`.
    public func run(
        against address: SocketAddress,
        clientLoops: [EventLoop],
        serverLoops: [EventLoop] = [],
        progress: (Progress) -> Void = { _ in }
    ) async throws -> Report {
        precondition(!clientLoops.isEmpty, "the connections need a loop")
        let streams = try await connectAll(to: address, on: clientLoops)
        let state = RunState(connections: connections)
        let messageSize = self.messageSize
        let clock = clientLoops[0].clock
        return try await withThrowingTaskGroup(of: LatencyHistogram.self) { group in
            for (index, stream) in streams.enumerated() {
                group.addTask(executorPreference: stream.eventLoop) {
                    try await Self.pingPong(stream, index: index, messageSize: messageSize, state: state)
                }
            }
            let window: (messages: Int, elapsed: Duration, cpu: Duration?)
            do {
                if warmUp > .zero {
                    try await waitOut(.warmUp, for: warmUp, on: clock, state: state, progress: progress)
                }
                let cpuBefore = await Self.threadCPUTime(of: serverLoops)
                let messagesBefore = state.messageCount
                let start = clock.now
                state.phase.store(RunState.measuring, ordering: .relaxed)
                try await waitOut(.measuring, for: duration, on: clock, state: state, progress: progress)
                state.phase.store(RunState.stopped, ordering: .relaxed)
                let elapsed = start.duration(to: clock.now)
                let messages = state.messageCount - messagesBefore
                let cpuAfter = await Self.threadCPUTime(of: serverLoops)
                window = (messages, elapsed, serverLoops.isEmpty ? nil : cpuAfter - cpuBefore)
            } catch {
                // The connections stop at their next message, and the group awaits them.
                state.phase.store(RunState.stopped, ordering: .relaxed)
                throw error
            }
            var latency = LatencyHistogram()
            for try await histogram in group { latency.merge(histogram) }
            return Report(messages: window.messages, elapsed: window.elapsed, latency: latency, serverCPUTime: window.cpu)
        }
    }

    /// Opens every connection, on the loops in turn; closes those opened if one fails.
    private func connectAll(to address: SocketAddress, on loops: [EventLoop]) async throws -> [TCPStream] {
        try await withThrowingTaskGroup(of: TCPStream.self) { group in
            for index in 0..<connections {
                let loop = loops[index % loops.count]
                group.addTask(executorPreference: loop) {
                    let stream = try await TCPStream.connect(to: address, on: loop)
                    do {
                        try stream.setOption(.noDelay, to: true)
                    } catch {
                        try? stream.close()
                        throw error
                    }
                    return stream
                }
            }
            var streams: [TCPStream] = []
            do {
                for try await stream in group { streams.append(stream) }
            } catch {
                for stream in streams { try? stream.close() }
                while let late = await group.nextResult() {
                    if case .success(let stream) = late { try? stream.close() }
                }
                throw error
            }
            return streams
        }
    }

    /// Sleeps through a phase on `clock`, reporting progress once a second.
    private func waitOut(
        _ phase: Phase, for length: Duration, on clock: LoopClock, state: RunState, progress: (Progress) -> Void
    ) async throws {
        let start = clock.now
        var lastReport = start
        var lastCount = state.messageCount
        while case let elapsed = start.duration(to: clock.now), elapsed < length {
            try await clock.sleep(until: min(lastReport.advanced(by: .seconds(1)), start.advanced(by: length)))
            let now = clock.now
            let count = state.messageCount
            progress(Progress(
                phase: phase, elapsed: min(start.duration(to: now), length), length: length,
                messagesPerSecond: Double(count - lastCount) / lastReport.duration(to: now).seconds))
            lastReport = now
            lastCount = count
        }
    }

    /// One connection's part in a run: round trips until the run stops, then a clean
    /// close. Runs on the stream's loop.
    private static func pingPong(
        _ stream: TCPStream, index: Int, messageSize: Int, state: RunState
    ) async throws -> LatencyHistogram {
        defer { try? stream.close() }
        let outgoing = UnsafeMutableRawBufferPointer.allocate(byteCount: messageSize, alignment: 16)
        defer { outgoing.deallocate() }
        let incoming = UnsafeMutableRawBufferPointer.allocate(byteCount: messageSize, alignment: 16)
        defer { incoming.deallocate() }
        for offset in 0..<messageSize { outgoing[offset] = UInt8(truncatingIfNeeded: offset &* 31 &+ index) }
        let counter = state.counters[index]
        var latency = LatencyHistogram()

        while state.phase.load(ordering: .relaxed) != RunState.stopped {
            let sent = LoopClock.Instant.now
            try await stream.write(UnsafeRawBufferPointer(outgoing))
            try await stream.read(exactly: incoming)
            let received = LoopClock.Instant.now
            guard memcmp(outgoing.baseAddress!, incoming.baseAddress!, messageSize) == 0 else {
                throw CorruptEcho(connection: index)
            }
            counter.increment()
            if state.phase.load(ordering: .relaxed) == RunState.measuring {
                latency.record(nanoseconds: received.nanoseconds - sent.nanoseconds)
            }
        }
        // The server echoes what it has, then closes when it reads the end of stream.
        try stream.shutdown(.writing)
        while try await stream.read(into: incoming) > 0 {}
        return latency
    }

    /// The summed CPU time of the threads of `loops`, each read by a job on its loop.
    private static func threadCPUTime(of loops: [EventLoop]) async -> Duration {
        var total = Duration.zero
        for loop in loops {
            total += await Task(executorPreference: loop) { () -> Duration in
                precondition(loop.isCurrent, "a loop's thread CPU time is read on the loop")
                var now = timespec()
                // Fails only for an unknown clock; this one exists on every Linux and BSD.
                let result = clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
                precondition(result == 0, "CLOCK_THREAD_CPUTIME_ID is unavailable: \(errno)")
                return .seconds(now.tv_sec) + .nanoseconds(now.tv_nsec)
            }.value
        }
        return total
    }
}

/// What the coordinator and the connections of a run share.
private final class RunState: Sendable {
    static let warmingUp: UInt8 = 0
    static let measuring: UInt8 = 1
    static let stopped: UInt8 = 2

    /// `warmingUp`, then `measuring`, then `stopped`; only the coordinator writes it.
    /// Relaxed on both sides: a connection that sees a change one message late only
    /// shifts that message between phases.
    let phase = Atomic<UInt8>(warmingUp)
    /// Round trips per connection: each is written by its connection's task alone, so
    /// connections never contend for a cache line's ownership on a shared count.
    let counters: [MessageCounter]

    init(connections: Int) {
        counters = (0..<connections).map { _ in MessageCounter() }
    }

    /// The round trips completed so far, all connections together.
    var messageCount: Int {
        counters.reduce(0) { $0 + $1.count }
    }
}

/// One connection's count of round trips.
private final class MessageCounter: Sendable {
    private let value = Atomic<Int>(0)
    // Pads the object to 128 bytes, so that the counters of connections on different
    // loops, allocated one after another, never share a cache line.
    private let padding: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    /// The count so far; from any thread.
    var count: Int { value.load(ordering: .relaxed) }

    /// Adds one. Only the connection's own task calls it, so a load and a store do, with
    /// no read-modify-write instruction.
    func increment() { value.store(value.load(ordering: .relaxed) + 1, ordering: .relaxed) }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
