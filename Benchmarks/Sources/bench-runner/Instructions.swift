// Events of a server over a measured window, read through `perf stat`: the instructions it retires,
// user and kernel apart, from the hardware counters (unlike CPU time they do not depend on how fast
// the VM runs or on who else is on the CPU, so they compare servers steadily across rounds and runs),
// and its system calls, from the tracepoints.
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

/// `perf stat` counting some events of a process, on a machine where the probe found them all
/// counted: the instruction counters, or the system-call tracepoints.
struct EventCounter {
    /// Instructions in user space and in the kernel (hardware counters).
    static let instructions = "instructions:u,instructions:k"
    /// Every system call, and `io_uring_enter` alone (tracepoints, which VMs without a virtual
    /// PMU have too, and which slow the traced process far less than strace does).
    static let syscalls = "\(allSyscalls),\(uringEnters)"
    /// The tracepoint of every system call.
    static let allSyscalls = "raw_syscalls:sys_enter"
    /// The tracepoint of `io_uring_enter`.
    static let uringEnters = "syscalls:sys_enter_io_uring_enter"

    let events: String

    /// Counts `true`'s events once, and returns a counter if perf reported every one of them.
    /// Throws the reason otherwise: perf missing, or an event not supported (as the instruction
    /// counters are on VMs without a virtual PMU).
    static func probe(_ events: String) throws(MeasurementError) -> EventCounter {
        let (status, output) = capture(["perf", "stat", "-x,", "-e", events, "true"], timeout: 30)
        let counter = EventCounter(events: events)
        guard status == 0, counter.parse(output) != nil else {
            let reason = output.split(separator: "\n").filter { !$0.isEmpty }.suffix(2).joined(separator: " | ")
            throw MeasurementError("`perf stat -e \(events) true` did not count them (exit \(status): \(reason))")
        }
        return counter
    }

    /// Starts counting `pid`'s events now, until ``Counting/stop()``.
    func start(pid: pid_t) throws -> Counting {
        Counting(counter: self, perf: try spawn(["perf", "stat", "-x,", "-e", events, "-p", String(pid)], output: .pipe))
    }

    /// perf's CSV lines, `value,unit,event,...`, by event; nil when one of `events` is missing or
    /// reads `<not supported>` or `<not counted>`.
    fileprivate func parse(_ output: String) -> [String: Double]? {
        var counts = [String: Double]()
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            if fields.count >= 3, let value = Double(fields[0]) { counts[String(fields[2])] = value }
        }
        let names = events.split(separator: ",").map(String.init)
        return names.allSatisfy { counts[$0] != nil } ? counts : nil
    }
}

extension Instructions {
    /// The instruction counts among an ``EventCounter/instructions`` counter's.
    init?(_ counts: [String: Double]) {
        guard let user = counts["instructions:u"], let kernel = counts["instructions:k"] else { return nil }
        self.init(user: user, kernel: kernel)
    }
}

/// One `perf stat -p PID` under way.
struct Counting {
    let counter: EventCounter
    let perf: Child

    /// Ends the count now: perf stops counting on SIGINT, then prints and exits.
    func stop() {
        kill(perf.pid, SIGINT)
    }

    /// The counts by event, once perf has printed them after ``stop()``.
    func read() throws -> [String: Double] {
        var output = ""
        readLines(from: perf, timeout: 10) { output += $0 + "\n" }
        perf.wait()
        guard let counts = counter.parse(output) else {
            throw MeasurementError("perf stat printed no counts of \(counter.events): \(output.split(separator: "\n").suffix(2).joined(separator: " | "))")
        }
        return counts
    }

    /// Ends perf without reading it, after a failed run.
    func cancel() {
        perf.stop(signal: SIGKILL)
    }
}
