// The paired comparison (`--pair A B --figure ID`): two servers on one echo figure, many rounds,
// each round measuring both back to back, the order swapped every round (A B, B A, ...). On a
// shared VM whose speed drifts by ±15% between runs, five rounds of every server cannot tell two
// servers a few percent apart; the ratio of two runs made one after the other mostly can, and the
// median of many such ratios, with its confidence interval, decides a target.
import Foundation

/// Measures `first` and `second` on `figureID` for `rounds` rounds and logs every round's
/// messages per server CPU-second, the ratio of the two, and the median ratio with a 95%
/// confidence interval. Returns false if a server is unknown or a run failed.
func comparePair(_ first: String, _ second: String, figureID: String, options: Options,
                 programs: Programs, ports: PortAllocator) -> Bool {
    guard let figure = echoFigures.first(where: { $0.id == figureID }) else {
        log("no echo figure \(figureID); the figures are \(echoFigures.map(\.id).joined(separator: ", "))")
        return false
    }
    let servers = programs.echoServers
    guard let a = servers.first(where: { $0.name == first }), let b = servers.first(where: { $0.name == second }) else {
        log("the servers are \(servers.map { "\"\($0.name)\"" }.joined(separator: ", "))")
        return false
    }
    log("[pair] \(first) / \(second), \(figure.label): \(options.rounds) rounds of \(options.duration) s "
        + "after \(options.warmup) s of warm-up, the order swapped every round")
    var ratios: [Double] = []
    for round in 0..<options.rounds {
        var perCPUSecond: [String: Double] = [:]
        do {
            for server in round % 2 == 0 ? [a, b] : [b, a] {
                let running = try start(server, port: ports.fresh(), cpu: 1, logDirectory: Paths.logs)
                defer { running.child.stop() }
                let sample = try measureEcho(programs, server: running, connections: figure.connections,
                                             size: figure.size, warmup: options.warmup,
                                             duration: options.duration, loadgenCPU: figure.loadgenCPU,
                                             reconnecting: figure.reconnecting)
                perCPUSecond[server.name] = sample.messagesPerCPUSecond
            }
        } catch {
            log("[pair] round \(round + 1) failed: \(error)")
            return false
        }
        let ratio = perCPUSecond[first]! / perCPUSecond[second]!
        ratios.append(ratio)
        log(String(format: "[pair] round %d: %.0f / %.0f msgs per server CPU-s = %.3f",
                   round + 1, perCPUSecond[first]!, perCPUSecond[second]!, ratio))
    }
    let sorted = ratios.sorted()
    let (low, high) = medianConfidenceRanks(count: sorted.count)
    log("[pair] \(first) / \(second), \(figure.label): median ratio "
        + String(format: "%.3f, 95%% confidence interval %.3f–%.3f", Spread(sorted)!.median, sorted[low], sorted[high])
        + "; \(first) ahead in \(ratios.filter { $0 > 1 }.count) of \(ratios.count) rounds")
    return true
}

/// The 0-based ranks, in `count` sorted values, that bound a distribution-free 95% confidence
/// interval for their median: the widest pair whose binomial(count, ½) tails each hold at most 2.5%.
func medianConfidenceRanks(count: Int) -> (low: Int, high: Int) {
    var tail = 0.0
    var probability = pow(0.5, Double(count))  // P(X = 0)
    var low = 0
    // Grow the lower rank while P(X ≤ low) stays within 2.5%.
    while low < count / 2 {
        tail += probability
        if tail > 0.025 { break }
        probability *= Double(count - low) / Double(low + 1)
        low += 1
    }
    low = max(low - 1, 0)
    return (low, count - 1 - low)
}
