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
    var pair: [Server] = []
    for name in [first, second] {
        guard let server = servers.first(where: { $0.name == name }) else {
            log("no echo server \"\(name)\"; the servers are \(servers.map { "\"\($0.name)\"" }.joined(separator: ", "))")
            return false
        }
        pair.append(server)
    }
    log("[pair] \(first) / \(second), \(figure.label): \(options.rounds) rounds of \(options.duration) s "
        + "after \(options.warmup) s of warm-up, the order swapped every round")
    var ratios: [Double] = []
    for round in 0..<options.rounds {
        // By position, not by name: a server compared with itself measures the machine's noise.
        var perCPUSecond = [0.0, 0.0]
        do {
            for index in round % 2 == 0 ? [0, 1] : [1, 0] {
                let running = try start(pair[index], port: ports.fresh(), cpu: 1, logDirectory: Paths.logs)
                defer { running.child.stop() }
                let sample = try measureEcho(programs, server: running, connections: figure.connections,
                                             size: figure.size, warmup: options.warmup,
                                             duration: options.duration, loadgenCPU: figure.loadgenCPU,
                                             reconnecting: figure.reconnecting)
                perCPUSecond[index] = sample.messagesPerCPUSecond
            }
        } catch {
            log("[pair] round \(round + 1) failed: \(error)")
            return false
        }
        let ratio = perCPUSecond[0] / perCPUSecond[1]
        ratios.append(ratio)
        log(String(format: "[pair] round %d: %.0f / %.0f msgs per server CPU-s = %.3f",
                   round + 1, perCPUSecond[0], perCPUSecond[1], ratio))
    }
    let sorted = ratios.sorted()
    let (low, high) = medianConfidenceRanks(count: sorted.count)
    log("[pair] \(first) / \(second), \(figure.label): median ratio "
        + String(format: "%.3f, 95%% confidence interval %.3f–%.3f", Spread(sorted)!.median, sorted[low], sorted[high])
        + "; \(first) ahead in \(ratios.filter { $0 > 1 }.count) of \(ratios.count) rounds")
    return true
}

/// The 0-based ranks, in `count` sorted values, that bound a distribution-free 95% confidence
/// interval for their median: the values of 1-based ranks k and count + 1 - k, for the largest k
/// whose binomial(count, ½) tail P(X ≤ k - 1) holds at most 2.5%. Needs `count` ≥ 6; below
/// that no such k exists.
func medianConfidenceRanks(count: Int) -> (low: Int, high: Int) {
    precondition(count >= 6, "fewer than 6 values bound no 95% interval for their median")
    var k = 0
    var tail = 0.0                              // P(X ≤ k - 1)
    var probability = pow(0.5, Double(count))   // P(X = k)
    while tail + probability <= 0.025 {
        tail += probability
        probability *= Double(count - k) / Double(k + 1)
        k += 1
    }
    return (k - 1, count - k)
}
