// The instructions a server retires over a measured window, user and kernel apart, read from the
// hardware counters through `perf stat`. Unlike CPU time they do not depend on how fast the VM runs
// or on who else is on the CPU, so they compare servers steadily across rounds and runs.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Instructions retired by a process (all its threads) over a window.
struct Instructions {
    var user: Double
    var kernel: Double

    var total: Double { user + kernel }

    /// The counts divided by `units` (the messages or requests of the window); nil if there were none.
    func per(_ units: Double) -> Instructions? {
        units > 0 ? Instructions(user: user / units, kernel: kernel / units) : nil
    }
}

/// `perf stat` counting instructions, on a machine where the probe found both counters working.
struct InstructionCounter {
    static let events = "instructions:u,instructions:k"

    private init() {}

    /// Counts `true`'s instructions once, and returns a counter if perf reported both numbers.
    /// Throws the reason otherwise: perf missing, or the counters not supported (as on VMs
    /// without a virtual PMU).
    static func probe() throws(MeasurementError) -> InstructionCounter {
        let (status, output) = capture(["perf", "stat", "-x,", "-e", events, "true"], timeout: 30)
        guard status == 0, parse(output) != nil else {
            let reason = output.split(separator: "\n").filter { !$0.isEmpty }.suffix(2).joined(separator: " | ")
            throw MeasurementError("`perf stat -e \(events) true` did not count instructions (exit \(status): \(reason))")
        }
        return InstructionCounter()
    }

    /// Starts counting `pid`'s instructions now, until ``Counting/stop()``.
    func start(pid: pid_t) throws -> Counting {
        Counting(perf: try spawn(["perf", "stat", "-x,", "-e", Self.events, "-p", String(pid)], output: .pipe))
    }

    /// perf's CSV lines, `value,unit,event,...`, for the two events; nil when either is missing or
    /// reads `<not supported>` or `<not counted>`.
    fileprivate static func parse(_ output: String) -> Instructions? {
        var counts = [String: Double]()
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            if fields.count >= 3, let value = Double(fields[0]) { counts[String(fields[2])] = value }
        }
        guard let user = counts["instructions:u"], let kernel = counts["instructions:k"] else { return nil }
        return Instructions(user: user, kernel: kernel)
    }
}

/// One `perf stat -p PID` under way.
struct Counting {
    let perf: Child

    /// Ends the count now: perf stops counting on SIGINT, then prints and exits.
    func stop() {
        kill(perf.pid, SIGINT)
    }

    /// The counts, once perf has printed them after ``stop()``.
    func read() throws -> Instructions {
        var output = ""
        readLines(from: perf, timeout: 10) { output += $0 + "\n" }
        perf.wait()
        guard let counts = InstructionCounter.parse(output) else {
            throw MeasurementError("perf stat printed no instruction counts: \(output.split(separator: "\n").suffix(2).joined(separator: " | "))")
        }
        return counts
    }

    /// Ends perf without reading it, after a failed run.
    func cancel() {
        perf.stop(signal: SIGKILL)
    }
}
