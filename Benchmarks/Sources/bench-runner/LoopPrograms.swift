// The event-loop figures: timers, cross-thread wake-ups and tasks on the loop, measured by `reactor-loop` and
// `nio-loop` (this package), which run LoopBench's one workload through each loop's own API.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One loop implementation's program.
struct LoopProgram: Hashable {
    /// The name in tables ("Reactor epoll", "SwiftNIO").
    let name: String
    /// The command line without the workload and its options.
    let command: [String]
}

extension Programs {
    var loopPrograms: [LoopProgram] {
        var programs = [LoopProgram(name: "SwiftNIO", command: ["\(swiftBin)/nio-loop"])]
        if reactor.loopProgram {
            for backend in reactor.backends {
                programs.append(LoopProgram(name: "Reactor \(backend)",
                                            command: ["\(swiftBin)/reactor-loop", "--backend", backend]))
            }
        }
        return programs
    }
}

/// What one run of a loop program printed, by figure:
/// `earliest_ns_per_pair`, `anywhere_ns_per_pair`, `fired_per_cpu_sec`, `fired_per_sec`,
/// `p50_us`, `p99_us`, `jobs_per_sec`, `ns_per_resume`, `resumes_per_sec`.
typealias LoopSample = [String: Double]

/// The workloads' sizes for one run of the runner.
struct LoopWorkload {
    var pending = 100_000
    var churnSeconds = 1.0
    var samples = 2_000
    var jobs = 1_000_000
    /// Few enough that a loop whose tasks hop through another executor (SwiftNIO's) takes
    /// seconds, not minutes.
    var resumes = 300_000

    static let quick = LoopWorkload(pending: 100_000, churnSeconds: 0.3, samples: 500, jobs: 1_000_000, resumes: 100_000)
    static let smoke = LoopWorkload(pending: 1_000, churnSeconds: 0.05, samples: 20, jobs: 10_000, resumes: 1_000)

    var timers: [String] { ["timers", "--pending", String(pending), "--seconds", String(churnSeconds)] }
    var wakeUp: [String] { ["wakeup", "--samples", String(samples), "--jobs", String(jobs)] }
    var tasks: [String] { ["tasks", "--resumes", String(resumes)] }
}

/// Runs `program`'s timer, wake-up and task workloads, each in a fresh process on CPUs 0 and 1:
/// the loop's thread on CPU 1, the producer (the main thread) on CPU 0.
func measureLoop(_ program: LoopProgram, workload: LoopWorkload) throws -> LoopSample {
    var sample = LoopSample()
    for arguments in [workload.timers, workload.wakeUp, workload.tasks] {
        let command = ["taskset", "-c", "0,1"] + program.command + arguments + ["--loop-cpu", "1", "--producer-cpu", "0"]
        let (status, output) = capture(command, timeout: 120)
        guard status == 0 else {
            throw MeasurementError("\(arguments[0]) exit \(status): \(output.split(separator: "\n").suffix(2).joined(separator: " | "))")
        }
        for line in output.split(separator: "\n").map(String.init) {
            let fields = parseFields(line)
            if line.hasPrefix("timer_churn"), let pattern = ["earliest", "anywhere"].first(where: { line.contains("pattern=\($0)") }) {
                sample["\(pattern)_ns_per_pair"] = fields["ns_per_pair"]
            } else if line.hasPrefix("timer_fire") || line.hasPrefix("wake_") || line.hasPrefix("task_resume") {
                let counts: Set = ["timers", "samples", "jobs", "resumes"]
                sample.merge(fields.filter { !counts.contains($0.key) }) { $1 }
            }
        }
    }
    let expected = ["earliest_ns_per_pair", "anywhere_ns_per_pair", "fired_per_cpu_sec", "fired_per_sec",
                    "p50_us", "p99_us", "jobs_per_sec", "ns_per_resume", "resumes_per_sec"]
    let missing = expected.filter { sample[$0] == nil }
    guard missing.isEmpty else { throw MeasurementError("no \(missing.joined(separator: ", ")) in the output") }
    return sample
}
