import ArgumentParser
import Reactor
import Synchronization

/// Jobs handed to a loop from another thread.
struct CrossThreadWakeUp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wakeup",
        abstract: "Cross-thread hand-off: enqueue-to-run latency on an idle loop, and jobs per second from one producer.")

    @OptionGroup var options: BenchOptions

    @Option(help: "Hand-offs timed per latency run.")
    var samples = 2_000

    @Option(help: "Jobs per throughput run.")
    var jobs = 1_000_000

    func run() async throws {
        for backend in options.backends {
            try await withEventLoopGroup(loopCount: 1, backend: backend) { group in
                let loop = group.loops[0]
                var medians: [Double] = []
                for _ in 0..<options.runs { medians.append(try await latency(on: loop)) }
                report("enqueue to run, idle loop, \(backend), p50", medians, unit: "µs")
                var rates: [Double] = []
                for _ in 0..<options.runs { rates.append(await throughput(on: loop)) }
                report("jobs from one other thread, \(backend)", rates, unit: "jobs/s")
            }
        }
    }

    /// A task on the loop parks; a task on Swift's global executor resumes it, stamping the
    /// time just before. Returns the median delay until the loop runs the resumed task, in µs.
    private func latency(on loop: EventLoop) async throws -> Double {
        let handOff = HandOff()
        let count = samples
        let producer = Task.detached {
            for _ in 0..<count {
                var continuation: UnsafeContinuation<LoopClock.Instant, Never>?
                while continuation == nil {
                    continuation = handOff.slot.withLock { $0.take() }
                    if continuation == nil { await Task.yield() }
                }
                continuation!.resume(returning: .now)
            }
        }
        let delays = try await Task(executorPreference: loop) { () -> [Double] in
            var delays: [Double] = []
            for _ in 0..<count {
                // Let the loop go idle, so each hand-off has to wake it.
                try await loop.clock.sleep(for: .milliseconds(1))
                let sent = await withUnsafeContinuation { continuation in
                    handOff.slot.withLock { $0 = continuation }
                }
                let delay = sent.duration(to: .now)
                delays.append(Double(delay.components.attoseconds) / 1e12)
            }
            return delays
        }.value
        await producer.value
        return summary(delays).median
    }

    /// One detached task creates `jobs` tasks on the loop; returns jobs run per second.
    private func throughput(on loop: EventLoop) async -> Double {
        let count = jobs
        let done = Tally()
        let elapsed = await seconds {
            await Task.detached {
                await withDiscardingTaskGroup { group in
                    for _ in 0..<count {
                        group.addTask(executorPreference: loop) { done.count.add(1, ordering: .relaxed) }
                    }
                }
            }.value
        }
        precondition(done.count.load(ordering: .relaxed) == count)
        return Double(count) / elapsed
    }
}

/// Where the loop's task leaves its continuation for the producer to resume.
private final class HandOff: Sendable {
    let slot = Mutex<UnsafeContinuation<LoopClock.Instant, Never>?>(nil)
}

/// Jobs that have run.
private final class Tally: Sendable {
    let count = Atomic<Int>(0)
}
