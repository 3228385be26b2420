// The timer and wake-up workloads, the same for every loop, each ending in `key=value` lines that
// the runner parses:
//
//   timer_churn pattern=earliest pending=100000 pairs=... ns_per_pair=...
//   timer_churn pattern=anywhere pending=100000 pairs=... ns_per_pair=...
//   timer_fire timers=100000 fired_per_cpu_sec=... fired_per_sec=...
//   wake_latency samples=... p50_us=... p99_us=...
//   wake_throughput jobs=... jobs_per_sec=...
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on the loop's thread and waits for its result.
@inlinable
public func onLoop<Loop: LoopUnderTest, Result: Sendable>(
    _ loop: Loop, _ body: @escaping @Sendable () -> Result
) -> Result {
    let box = ResultBox<Result>()
    loop.execute {
        box.value = body()
        box.done.signal()
    }
    box.done.wait()
    return box.value!
}

/// A result handed from the loop's thread to the waiting one: written before `done` is
/// signalled, read after it is waited for, so the semaphore orders the two.
public final class ResultBox<Result>: @unchecked Sendable {
    public var value: Result?
    public let done = DispatchSemaphore(value: 0)
    public init() {}
}

/// Pins the loop's thread to `cpu`.
public func pinLoop<Loop: LoopUnderTest>(_ loop: Loop, to cpu: Int) {
    onLoop(loop) { pinCurrentThread(to: cpu) }
}

// MARK: - Timers

/// Keeps `pending` timers 10–20 s out, then, for `seconds` each, schedules and at once cancels
/// timers whose deadline is before all of them ("earliest") or anywhere among them
/// ("anywhere"); the deadlines cycle through 1,024 drawn in advance. Then schedules `pending`
/// more timers staggered over 0–100 ms and measures how fast they fire, in the loop thread's
/// CPU time and in wall time from the first scheduling to the last firing.
public func timerWorkload<Loop: LoopUnderTest>(_ loop: Loop, pending: Int, seconds: Double) {
    let background = onLoop(loop) { () -> UncheckedBox<[Loop.Timer]> in
        let base = loop.now()
        return UncheckedBox((0..<pending).map { _ in
            loop.schedule(at: loop.deadline(base, plusMilliseconds: Int.random(in: 10_000...20_000))) {}
        })
    }
    for (pattern, range) in [("earliest", 1...9_000), ("anywhere", 10_000...20_000)] {
        let (pairs, elapsed) = onLoop(loop) { churn(loop, offsets: range, seconds: seconds) }
        emit("timer_churn pattern=\(pattern) pending=\(pending) pairs=\(pairs) ns_per_pair=\(fixed(elapsed * 1e9 / Double(pairs), 1))")
    }
    let fire = FireCount(target: pending)
    loop.execute {
        fire.cpuStart = threadCPUSeconds()
        fire.wallStart = monotonicSeconds()
        let base = loop.now()
        for index in 0..<pending {
            _ = loop.schedule(at: loop.deadline(base, plusMilliseconds: index * 100 / pending)) { fire.count() }
        }
    }
    fire.done.wait()
    emit("timer_fire timers=\(pending) fired_per_cpu_sec=\(fixed(Double(pending) / (fire.cpuEnd - fire.cpuStart), 0)) "
        + "fired_per_sec=\(fixed(Double(pending) / (fire.wallEnd - fire.wallStart), 0))")
    withExtendedLifetime(background) {}
}

/// Schedule + cancel pairs in batches of 1,024 until `seconds` have passed; on the loop.
/// Returns the pairs and the seconds they took.
@inlinable
func churn<Loop: LoopUnderTest>(_ loop: Loop, offsets: ClosedRange<Int>, seconds: Double) -> (Int, Double) {
    let base = loop.now()
    let deadlines = (0..<1_024).map { _ in loop.deadline(base, plusMilliseconds: Int.random(in: offsets)) }
    let start = monotonicSeconds()
    var pairs = 0
    var elapsed = 0.0
    repeat {
        for deadline in deadlines {
            loop.cancel(loop.schedule(at: deadline) {})
        }
        pairs += deadlines.count
        elapsed = monotonicSeconds() - start
    } while elapsed < seconds
    return (pairs, elapsed)
}

/// Timers fired so far, and the clocks at the first scheduling and the last firing. Touched on
/// the loop's thread only, until `done` hands the result to the waiting thread.
final class FireCount: @unchecked Sendable {
    let target: Int
    var fired = 0
    var cpuStart = 0.0, cpuEnd = 0.0, wallStart = 0.0, wallEnd = 0.0
    let done = DispatchSemaphore(value: 0)

    init(target: Int) { self.target = target }

    func count() {
        fired += 1
        if fired == target {
            cpuEnd = threadCPUSeconds()
            wallEnd = monotonicSeconds()
            done.signal()
        }
    }
}

/// Loop-bound values carried back to the waiting thread, which only keeps them alive.
public struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

// MARK: - Cross-thread wake-ups

/// From the calling thread (the producer): `samples` times, lets the loop go idle for 1 ms,
/// then stamps the time and hands it a closure that stamps it again when it runs; reports
/// the median and the 99th percentile of the delay. Then hands over `jobs` closures as fast
/// as it can and reports jobs run per second, from the first hand-over to the last run. The
/// closures capture nothing, so no allocation is counted beyond the loop's own.
public func wakeUpWorkload<Loop: LoopUnderTest>(_ loop: Loop, samples: Int, jobs: Int) {
    var delays: [Double] = []
    delays.reserveCapacity(samples)
    for _ in 0..<samples {
        usleep(1_000)
        wakeSentAt.store(monotonicNanoseconds(), ordering: .relaxed)
        loop.execute(stampWake)
        wakeDone.wait()
        delays.append(Double(wakeDelay.load(ordering: .relaxed)) / 1e3)
    }
    delays.sort()
    emit("wake_latency samples=\(samples) p50_us=\(fixed(delays[samples / 2], 1)) p99_us=\(fixed(delays[samples * 99 / 100], 1))")

    onLoop(loop) { countedJobs = 0; jobTarget = jobs }
    let start = monotonicSeconds()
    for _ in 0..<jobs { loop.execute(countJob) }
    wakeDone.wait()
    let elapsed = monotonicSeconds() - start
    emit("wake_throughput jobs=\(jobs) jobs_per_sec=\(fixed(Double(jobs) / elapsed, 0))")
}

// The wake-up closures are plain functions so that handing one over allocates nothing.
private let wakeDone = DispatchSemaphore(value: 0)
private let wakeSentAt = Atomic<Int>(0)
private let wakeDelay = Atomic<Int>(0)
// Written and read on the loop's thread only, between the two `onLoop` hops that order them.
nonisolated(unsafe) private var countedJobs = 0
nonisolated(unsafe) private var jobTarget = 0

@Sendable private func stampWake() {
    wakeDelay.store(monotonicNanoseconds() - wakeSentAt.load(ordering: .relaxed), ordering: .relaxed)
    wakeDone.signal()
}

@Sendable private func countJob() {
    countedJobs += 1
    if countedJobs == jobTarget { wakeDone.signal() }
}
