import ArgumentParser
import Reactor

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure Reactor: a loopback echo server and its clients (the default), and the event loop's core.",
        subcommands: [EchoBench.self, PipePingPong.self, TimerChurn.self, CrossThreadWakeUp.self],
        defaultSubcommand: EchoBench.self
    )
}

/// Options every core benchmark shares.
struct BenchOptions: ParsableArguments {
    @Option(help: "The backends to measure (repeat the option); all available by default.")
    var backend: [BackendKind] = []

    @Option(help: "Measured runs per backend; the median is reported.")
    var runs = 3

    var backends: [BackendKind] { backend.isEmpty ? BackendKind.availableHere : backend }
}

/// The median, the minimum and the maximum of `samples`.
func summary(_ samples: [Double]) -> (median: Double, min: Double, max: Double) {
    let sorted = samples.sorted()
    return (sorted[sorted.count / 2], sorted.first!, sorted.last!)
}

/// Prints one result line: the median with the range of the runs.
func report(_ label: String, _ samples: [Double], unit: String) {
    let (median, low, high) = summary(samples)
    print("\(label + String(repeating: " ", count: max(1, 44 - label.count)))\(format(median)) \(unit)  (min \(format(low)), max \(format(high)), \(samples.count) runs)")
}

func format(_ value: Double) -> String {
    if value >= 100 { return String(Int(value.rounded())) }
    let hundredths = Int((value * 100).rounded())
    return "\(hundredths / 100).\(String(hundredths % 100).leftPadded(to: 2))"
}

extension String {
    /// `self` with zeros in front, `width` characters long at least.
    func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}

/// Seconds elapsed on the monotonic clock while `body` runs.
func seconds(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    let elapsed = start.duration(to: .now)
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}
