import ArgumentParser
import Reactor
import Synchronization

/// Jobs handed to a loop from another thread.
struct CrossThreadWakeUp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wakeup",
        abstract: "Cross-thread hand-off: enqueue-to-run latency on an idle loop, and jobs per second resumed by one other thread.")

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
                report("resumed from one other thread, \(backend)", rates, unit: "jobs/s")
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

    /// Tasks on the loop park on continuations; one task on Swift's global executor takes
    /// them in batches and resumes them, so every job the loop runs was enqueued from
    /// that other thread. Returns jobs run per second.
    private func throughput(on loop: EventLoop) async -> Double {
        let parked = Parked()
        let perTask = jobs / 256
        let total = perTask * 256
        let elapsed = await seconds {
            let producer = Task.detached {
                var resumed = 0
                while resumed < total {
                    let batch = parked.continuations.withLock { continuations in
                        defer { continuations.removeAll(keepingCapacity: true) }
                        return continuations
                    }
                    for continuation in batch { continuation.resume() }
                    resumed += batch.count
                    if batch.isEmpty { await Task.yield() }
                }
            }
            await withDiscardingTaskGroup { group in
                for _ in 0..<256 {
                    group.addTask(executorPreference: loop) {
                        for _ in 0..<perTask {
                            await withUnsafeContinuation { continuation in
                                parked.continuations.withLock { $0.append(continuation) }
                            }
                        }
                    }
                }
            }
            await producer.value
        }
        return Double(total) / elapsed
    }
}

/// Continuations of tasks on the loop, waiting for the producer to resume them.
private final class Parked: Sendable {
    let continuations = Mutex<[UnsafeContinuation<Void, Never>]>([])
}

/// Where the loop's task leaves its continuation for the producer to resume.
private final class HandOff: Sendable {
    let slot = Mutex<UnsafeContinuation<LoopClock.Instant, Never>?>(nil)
}
