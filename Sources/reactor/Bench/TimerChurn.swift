import ArgumentParser
import Glibc
import Reactor

/// Timer callbacks count their firings here; they run on the loop's thread only.
nonisolated(unsafe) private var fired = 0

/// Scheduling, cancelling and firing callback timers on one loop.
struct TimerChurn: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "timers",
        abstract: "Timer wheel: schedule + cancel pairs with many timers pending, and timers fired per loop CPU-second.")

    @OptionGroup var options: BenchOptions

    @Option(help: "Timers kept pending while pairs are scheduled and cancelled.")
    var pending = 100_000

    @Option(help: "Schedule + cancel pairs per run.")
    var pairs = 1_000_000

    func run() async throws {
        for backend in options.backends {
            try await withEventLoopGroup(loopCount: 1, backend: backend) { group in
                let loop = group.loops[0]
                for earliest in [true, false] {
                    var samples: [Double] = []
                    for _ in 0..<options.runs {
                        let elapsed = await Task(executorPreference: loop) {
                            churn(on: loop, cancellingTheEarliest: earliest)
                        }.value
                        samples.append(elapsed * 1e9 / Double(pairs))
                    }
                    let pattern = earliest ? "the earliest" : "anywhere"
                    report("schedule + cancel, \(backend), \(pattern)", samples, unit: "ns/pair")
                }
                var rates: [Double] = []
                for _ in 0..<options.runs { rates.append(try await fireRate(on: loop)) }
                report("timers fired, \(backend), 0-100 ms", rates, unit: "per loop CPU-s")
            }
        }
    }

    /// Keeps `pending` timers 10–20 s out, then times `pairs` schedule + cancel pairs whose
    /// deadline is either before all of them or anywhere among them. Runs on the loop.
    private func churn(on loop: EventLoop, cancellingTheEarliest earliest: Bool) -> Double {
        let now = loop.clock.now
        var generator = SystemRandomNumberGenerator()
        let background = (0..<pending).map { _ in
            loop.schedule(at: now.advanced(by: .milliseconds(Int.random(in: 10_000...20_000, using: &generator)))) {}
        }
        let offsets = (0..<1_024).map { _ in
            Duration.milliseconds(earliest ? Int.random(in: 1...9_000, using: &generator)
                : Int.random(in: 10_000...20_000, using: &generator))
        }
        let start = LoopClock.Instant.now
        for index in 0..<pairs {
            loop.schedule(at: now.advanced(by: offsets[index & 1_023])) {}.cancel()
        }
        let elapsed = start.duration(to: .now)
        for timer in background { timer.cancel() }
        return Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds)
    }

    /// Schedules `pending` timers staggered over 0–100 ms and returns how many fired per
    /// second of the loop thread's CPU time, from scheduling to the last firing.
    private func fireRate(on loop: EventLoop) async throws -> Double {
        let count = pending
        return try await Task(executorPreference: loop) { () -> Double in
            fired = 0
            let cpuStart = threadCPUTime()
            let now = loop.clock.now
            for index in 0..<count {
                _ = loop.schedule(at: now.advanced(by: .microseconds(index * 100_000 / count))) { fired += 1 }
            }
            while fired < count { try await loop.clock.sleep(for: .milliseconds(10)) }
            return Double(count) / (threadCPUTime() - cpuStart)
        }.value
    }
}

/// CPU seconds the calling thread has used.
func threadCPUTime() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}
