// The RESULTS.md sections for the event-loop figures (timers, cross-thread wake-ups, tasks) and for
// memory per idle connection.
import Foundation

/// The target of ../shared/BENCHMARKS.md for memory per idle connection, in KiB.
let idleConnectionTarget = 1.0

func loopSection(results: Results, workload: LoopWorkload) -> String {
    guard !results.loop.isEmpty else { return "" }
    func spread(_ name: String, _ key: String) -> Spread? { Spread((results.loop[name] ?? []).compactMap { $0[key] }) }
    /// The value's cell and its ratio to SwiftNIO's; for times, SwiftNIO's over this one (a speed-up).
    func cells(_ name: String, _ key: String, speedUp: Bool = false, _ format: @escaping (Double) -> String) -> String {
        let rounds = results.loop[name]?.count ?? 0
        let mine = spread(name, key)?.median, nio = spread("SwiftNIO", key)?.median
        return "\(cell(spread(name, key), rounds: rounds, format)) | \(speedUp ? ratio(nio, over: mine) : ratio(mine, over: nio))"
    }
    let nanoseconds = { (value: Double) in compact(value) }
    let pending = thousands(workload.pending)
    var md = """
        ## Timers: one loop thread, \(pending) timers pending

        `reactor-loop` and `nio-loop` run LoopBench's one workload through `EventLoop.schedule(at:_:)` + \
        `ScheduledTimer.cancel()` and through SwiftNIO's `scheduleTask(deadline:_:)` + `Scheduled.cancel()`, \
        each in a fresh process with the loop's thread pinned to CPU 1. \(pending) timers wait 10–20 s out; \
        for \(decimal(workload.churnSeconds, 1)) s per pattern, timers are scheduled and at once cancelled with a \
        deadline before all of them ("earliest") or among them ("anywhere", the idle-timeout pattern), cycling \
        through 1,024 deadlines drawn in advance. Then \(pending) more timers staggered over 0–100 ms fire: per \
        CPU-second of the loop's thread, and per second of wall time from the first scheduling to the last firing \
        (at most about 1M/s, the spread's own pace). Ratios compare medians with SwiftNIO's (for ns, lower is better).


        """
    md += "| loop | schedule + cancel, earliest: ns per pair | speed-up over SwiftNIO | anywhere: ns per pair | speed-up over SwiftNIO "
    md += "| fired per loop CPU-s | × SwiftNIO | fired per s | × SwiftNIO |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    for program in results.loopPrograms {
        md += "| \(program.name) | \(cells(program.name, "earliest_ns_per_pair", speedUp: true, nanoseconds)) "
        md += "| \(cells(program.name, "anywhere_ns_per_pair", speedUp: true, nanoseconds)) "
        md += "| \(cells(program.name, "fired_per_cpu_sec", compact)) | \(cells(program.name, "fired_per_sec", compact)) |\n"
    }
    md += """

        ## Cross-thread wake-ups: one loop thread (CPU 1), one producer thread (CPU 0)

        Latency: \(thousands(workload.samples)) times, the producer lets the loop go idle for 1 ms, stamps \
        the time and hands it a closure through `execute` that stamps it again: enqueue to run. Throughput: the \
        producer hands over \(thousands(workload.jobs)) closures as fast as it can; jobs run per second from \
        the first hand-over to the last run. The closures capture nothing, so only the loop's own allocations count.


        """
    md += "| loop | enqueue to run p50 µs | × SwiftNIO | p99 µs | × SwiftNIO | jobs/s from one other thread | × SwiftNIO |\n"
    md += "|---|---:|---:|---:|---:|---:|---:|\n"
    for program in results.loopPrograms {
        md += "| \(program.name) | \(cells(program.name, "p50_us") { decimal($0) }) | \(cells(program.name, "p99_us") { decimal($0) }) "
        md += "| \(cells(program.name, "jobs_per_sec", compact)) |\n"
    }
    md += """

        ## Tasks on the loop: a suspension and its resumption

        Two tasks on the loop hand a baton back and forth, \(thousands(workload.resumes)) times in all: each \
        hand-over resumes the other task through its continuation and suspends the one handing over, the step \
        every awaited I/O event of a connection's task takes. On Reactor the tasks have the loop as their executor \
        (`Task(executorPreference:)`); SwiftNIO's loops are serial executors, not task executors, so there the \
        tasks are isolated to an actor that runs on the loop, and each resumption goes through Swift's global \
        executor first. CPU time is the whole process's, every thread's; resumptions per second are over wall time.


        """
    md += "| loop | CPU ns per resumption | speed-up over SwiftNIO | resumptions per s | × SwiftNIO |\n|---|---:|---:|---:|---:|\n"
    for program in results.loopPrograms {
        md += "| \(program.name) | \(cells(program.name, "ns_per_resume", speedUp: true, nanoseconds)) "
        md += "| \(cells(program.name, "resumes_per_sec", compact)) |\n"
    }
    return md + "\n"
}

func memorySection(results: Results) -> String {
    guard !results.memory.isEmpty else { return "" }
    let connections = results.memory.values.first?.first?.connections ?? idleConnections
    let count = thousands(connections)
    var md = """
        ## Memory: \(count) idle connections

        The server's VmRSS and VmHWM (peak resident set) from /proc/PID/status right after start-up, then while \
        `LoadGenerator/holdconns.c` (CPU 0) holds \(count) connections open and silent, each after one 1-byte \
        echo round trip (so the server accepted it and runs its handler). Per connection: the growth of VmHWM \
        divided by the connections. Target (../shared/BENCHMARKS.md): ≤ \(decimal(idleConnectionTarget, 0)) KiB \
        per idle connection.


        """
    md += "| server | VmHWM at start MiB | VmRSS with \(count) MiB | VmHWM with \(count) MiB "
    md += "| KiB per connection | ≤ \(decimal(idleConnectionTarget, 0)) KiB |\n|---|---:|---:|---:|---:|---|\n"
    for server in results.echoServers {
        let samples = results.memory[server.name] ?? []
        let perConnection = Spread(samples.map(\.kibPerConnection))
        let mebibytes = { (value: Double) in decimal(value / 1024) }
        md += "| \(server.name) | \(cell(Spread(samples.map(\.start.peak)), rounds: samples.count, mebibytes))"
        md += " | \(cell(Spread(samples.map(\.loaded.rss)), rounds: samples.count, mebibytes))"
        md += " | \(cell(Spread(samples.map(\.loaded.peak)), rounds: samples.count, mebibytes))"
        md += " | \(cell(perConnection, rounds: samples.count) { decimal($0, 2) })"
        md += " | \(perConnection.map { $0.median <= idleConnectionTarget ? "met" : "missed" } ?? "—") |\n"
    }
    return md + "\n"
}

/// The rows of the targets table for the loop and memory figures, for `name`.
func loopAndMemoryTargetRows(results: Results, name: String) -> String {
    var rows = ""
    func median(_ key: String) -> Double? { Spread((results.loop[name] ?? []).compactMap { $0[key] })?.median }
    func row(_ target: String, _ value: Double?, _ bound: Double, atLeast: Bool, _ format: (Double) -> String) {
        guard let value else { return }
        let met = atLeast ? value >= bound : value <= bound
        rows += "| \(target) | \(met ? "met" : "missed") (\(format(value))) |\n"
    }
    row("timers: schedule + cancel at 100k pending, earliest ≤ 100 ns", median("earliest_ns_per_pair"), 100, atLeast: false) { "\(decimal($0)) ns" }
    row("same, anywhere ≤ 100 ns", median("anywhere_ns_per_pair"), 100, atLeast: false) { "\(decimal($0)) ns" }
    row("timers fired (100k staggered) ≥ 2M per loop CPU-s", median("fired_per_cpu_sec"), 2e6, atLeast: true, compact)
    row("cross-thread enqueue ≥ 8M jobs/s", median("jobs_per_sec"), 8e6, atLeast: true, compact)
    row("memory per idle connection ≤ \(decimal(idleConnectionTarget, 0)) KiB",
        Spread((results.memory[name] ?? []).map(\.kibPerConnection))?.median, idleConnectionTarget, atLeast: false) { "\(decimal($0, 2)) KiB" }
    return rows
}

/// 100000 as "100,000".
func thousands(_ value: Int) -> String {
    var digits = String(value)
    var groups: [Substring] = []
    while digits.count > 3 {
        groups.insert(Substring(digits.suffix(3)), at: 0)
        digits.removeLast(3)
    }
    return ([Substring(digits)] + groups).joined(separator: ",")
}
