// The targets tables of RESULTS.md: the targets of ../shared/BENCHMARKS.md that a run can check,
// for Reactor's epoll backend and for its io_uring backend, each with a verdict.
import Foundation

/// "met (0.98)" or "missed by 2.1% (0.95)": `value` against `bound`.
private func verdict(_ value: Double?, _ bound: Double, atLeast: Bool) -> String {
    guard let value else { return "not measured" }
    let met = atLeast ? value >= bound : value <= bound
    let by = abs(value / bound - 1) * 100
    return met ? "met (\(String(format: "%.2f", value)))" : "missed by \(String(format: "%.1f", by))% (\(String(format: "%.2f", value)))"
}

/// The median of one echo figure's samples for `server`.
private func echoMedian(_ results: Results, _ figure: String, _ server: String, _ value: (EchoSample) -> Double) -> Double? {
    Spread((results.echo[figure]?[server] ?? []).map(value))?.median
}

/// The median HTTP server CPU per request of `server`, in µs.
private func httpCPUPerRequest(_ results: Results, _ server: String) -> Double? {
    Spread((results.http[server] ?? []).map(\.cpuMicrosecondsPerRequest))?.median
}

/// The section's heading, then its table, or why nothing was checked.
private func targetTable(_ name: String, available: Bool, rows: String) -> String {
    let md = "## Targets (../shared/BENCHMARKS.md), \(name)\n\n"
    guard available else { return md + "Not checked: \(name) was not available in this run.\n\n" }
    guard !rows.isEmpty else { return md + "Not checked: no \(name) sample in this run.\n\n" }
    return md + "| target | result |\n|---|---|\n" + rows + "\n"
}

func epollTargetSection(results: Results, reactor: ReactorAvailability) -> String {
    let name = "Reactor epoll"
    var rows = ""
    let efficiency = { (server: String) in echoMedian(results, "split-64", server, \.messagesPerCPUSecond) }
    if let mine = efficiency(name) {
        rows += "| echo msgs per server CPU-s, 64 conns ≥ 0.97 × C epoll | \(verdict(efficiency("C epoll").map { mine / $0 }, 0.97, atLeast: true)) |\n"
        rows += "| same ≥ 1.3 × SwiftNIO | \(verdict(efficiency("SwiftNIO").map { mine / $0 }, 1.3, atLeast: true)) |\n"
    }
    if let mine = echoMedian(results, "shared-1", name, \.p50) {
        rows += "| shared-mode 1-conn p50 ≤ 1.05 × C epoll | \(verdict(echoMedian(results, "shared-1", "C epoll", \.p50).map { mine / $0 }, 1.05, atLeast: false)) |\n"
    }
    if let mine = httpCPUPerRequest(results, name) {
        rows += "| HTTP server CPU per request ≤ 1.1 × C epoll | \(verdict(httpCPUPerRequest(results, "C epoll").map { mine / $0 }, 1.1, atLeast: false)) |\n"
        rows += "| same ≤ 0.6 × SwiftNIO | \(verdict(httpCPUPerRequest(results, "SwiftNIO").map { mine / $0 }, 0.6, atLeast: false)) |\n"
    }
    return targetTable(name, available: reactor.anyServer && reactor.backends.contains("epoll"),
                       rows: rows + anyBackendRows(results: results, name: name))
}

/// The io_uring targets: few syscalls, the C io_uring floor's efficiency, and never below epoll.
func uringTargetSection(results: Results, reactor: ReactorAvailability) -> String {
    let name = "Reactor uring"
    var rows = ""
    if let sample = results.syscalls[name] {
        let fast = sample.untraced?.perMessage(of: EventCounter.allSyscalls).map { "; at full speed \(decimal($0, 2))" } ?? ""
        rows += "| syscalls per echo message ≤ 0.1 at 64 connections (strace) | \(verdict(sample.perMessage, 0.1, atLeast: false))\(fast) |\n"
    }
    let efficiency = { (server: String) in echoMedian(results, "split-64", server, \.messagesPerCPUSecond) }
    if let mine = efficiency(name) {
        rows += "| echo msgs per server CPU-s, 64 conns ≥ 0.97 × C io_uring | \(verdict(efficiency("C io_uring").map { mine / $0 }, 0.97, atLeast: true)) |\n"
    }
    let comparison = figuresBelow(results: results, name, base: "Reactor epoll")
    if comparison.compared > 0 {
        let result = comparison.below.isEmpty
            ? "met (\(comparison.compared) figures compared)"
            : "missed: " + comparison.below.joined(separator: "; ")
        rows += "| never below Reactor epoll on any figure (medians of msgs or requests per server CPU-s) | \(result) |\n"
    }
    return targetTable(name, available: reactor.anyServer && reactor.backends.contains("uring"),
                       rows: rows + anyBackendRows(results: results, name: name))
}

/// The targets every backend shares: allocations, timers, wake-ups, memory.
private func anyBackendRows(results: Results, name: String) -> String {
    var rows = ""
    if let sample = results.allocations[name] {
        rows += "| heap allocations per echo round trip = 0 | \(sample.perMessage < 0.005 ? "met" : "missed") (\(decimal(sample.perMessage, 3))) |\n"
    }
    return rows + loopAndMemoryTargetRows(results: results, name: name)
}

/// Compares `name` with `base` on every echo and HTTP figure both have, by the median messages (or
/// requests) per server CPU-second; returns how many were compared and the ones where `name` is
/// below, with by how much.
func figuresBelow(results: Results, _ name: String, base: String) -> (compared: Int, below: [String]) {
    var figures: [(label: String, mine: Double?, theirs: Double?)] = echoFigures.map { figure in
        (figure.label, echoMedian(results, figure.id, name, \.messagesPerCPUSecond),
         echoMedian(results, figure.id, base, \.messagesPerCPUSecond))
    }
    let requests = { (server: String) in Spread((results.http[server] ?? []).map(\.requestsPerCPUSecond))?.median }
    figures.append((httpLabel, requests(name), requests(base)))
    var compared = 0, below: [String] = []
    for figure in figures {
        guard let mine = figure.mine, let theirs = figure.theirs, theirs > 0 else { continue }
        compared += 1
        if mine < theirs {
            below.append("\(figure.label) \(String(format: "%.1f", (1 - mine / theirs) * 100))% below (\(compact(mine)) vs \(compact(theirs)))")
        }
    }
    return (compared, below)
}
