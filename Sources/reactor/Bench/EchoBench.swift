import ArgumentParser
import Reactor
import ReactorServers

/// The loopback echo benchmark: an echo server and its clients in this process, on
/// separate event loop groups.
struct EchoBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo",
        abstract: "Loopback echo: connections with one message in flight each; messages/s, round-trip percentiles and the server's CPU time per message, per backend.")

    @Option(help: "Connections, each with one message in flight.")
    var connections = 64

    @Option(help: "Seconds measured per backend, after the warm-up.")
    var seconds: Double = 5

    @Option(help: "Seconds of warm-up per backend, not measured.")
    var warmUp: Double = 1

    @Option(help: "Bytes per message.")
    var size = 64

    @Option(help: "The backends to measure (repeat the option); all available by default.")
    var backend: [BackendKind] = []

    @Option(help: "Event loops (threads) of the server.")
    var serverLoops = 1

    @Option(help: "Event loops (threads) of the clients.")
    var clientLoops = 1

    func validate() throws {
        guard connections > 0 else { throw ValidationError("--connections must be at least 1") }
        guard size > 0 else { throw ValidationError("--size must be at least 1") }
        guard seconds > 0 else { throw ValidationError("--seconds must be more than 0") }
        guard warmUp >= 0 else { throw ValidationError("--warm-up cannot be negative") }
        guard serverLoops > 0, clientLoops > 0 else { throw ValidationError("--server-loops and --client-loops must be at least 1") }
    }

    func run() async throws {
        let benchmark = EchoBenchmark(
            connections: connections, messageSize: size, warmUp: .seconds(warmUp), duration: .seconds(seconds))
        let backends = backend.isEmpty ? BackendKind.availableHere : backend
        say("echo over loopback: \(connections) connections with one \(size)-byte message in flight each; "
            + "\(formatSeconds(seconds)) s measured after \(formatSeconds(warmUp)) s of warm-up; "
            + "server \(serverLoops) loop\(serverLoops == 1 ? "" : "s"), client \(clientLoops) loop\(clientLoops == 1 ? "" : "s")")
        var results: [(BackendKind, EchoBenchmark.Report)] = []
        for backend in backends {
            let report = try await withEventLoopGroup(loopCount: serverLoops, backend: backend) { serverGroup in
                try await withEventLoopGroup(loopCount: clientLoops, backend: backend) { clientGroup in
                    try await measure(benchmark, backend: backend, servers: serverGroup, clients: clientGroup)
                }
            }
            results.append((backend, report))
        }
        printTable(results)
    }

    /// One backend's run: starts the server, runs the clients, stops the server.
    private func measure(
        _ benchmark: EchoBenchmark, backend: BackendKind, servers: EventLoopGroup, clients: EventLoopGroup
    ) async throws -> EchoBenchmark.Report {
        let server = try TCPServer(bindingTo: .ipv4(127, 0, 0, 1, port: 0), on: servers.loops) {
            try await EchoServer.handle($0)
        }
        let report: EchoBenchmark.Report
        do {
            report = try await benchmark.run(
                against: server.address, clientLoops: clients.loops, serverLoops: servers.loops
            ) { progress in
                let phase = progress.phase == .warmUp ? "warm-up" : "measuring"
                rewriteLine("[\(backend)] \(phase) \(formatSeconds(progress.elapsed.inSeconds))/\(formatSeconds(progress.length.inSeconds)) s: "
                    + "\(grouped(progress.messagesPerSecond)) msgs/s")
            }
        } catch {
            rewriteLine("")
            _ = try? await server.shutdown(gracePeriod: .seconds(1))
            throw error
        }
        rewriteLine("")
        // Every client closed its connection, so the handlers are done or about to be.
        try await server.shutdown(gracePeriod: .seconds(5))
        return report
    }

    private func printTable(_ results: [(BackendKind, EchoBenchmark.Report)]) {
        let header = ["backend", "msgs/s", "p50 µs", "p99 µs", "p99.9 µs", "server CPU µs/msg", "server CPU"]
        var rows = [header]
        for (backend, report) in results {
            let cpuPerMessage = report.serverCPUTimePerMessage.map { format($0.inSeconds * 1e6) } ?? "-"
            let cpuShare = report.serverCPUTime.map { "\(Int(($0.inSeconds / report.elapsed.inSeconds * 100).rounded()))%" } ?? "-"
            rows.append([
                "\(backend)",
                grouped(report.messagesPerSecond),
                format(report.latency.percentile(0.5).inSeconds * 1e6),
                format(report.latency.percentile(0.99).inSeconds * 1e6),
                format(report.latency.percentile(0.999).inSeconds * 1e6),
                cpuPerMessage,
                cpuShare,
            ])
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max()! }
        for row in rows {
            let cells = row.indices.map { column in
                column == 0 ? row[column].alignedLeft(in: widths[column]) : row[column].alignedRight(in: widths[column])
            }
            say(cells.joined(separator: "  "))
        }
        say("server CPU: the server loops' thread CPU time in the measured window, per message and as a share of one core")
    }
}

/// Seconds without a fraction when they have none (`5`), else with one decimal (`0.5`).
private func formatSeconds(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return tenths % 10 == 0 ? "\(tenths / 10)" : "\(tenths / 10).\(tenths % 10)"
}

/// `value` rounded, with its thousands separated by commas: `212,345`.
private func grouped(_ value: Double) -> String {
    var digits = String(Int(value.rounded()))
    var groups: [Substring] = []
    while digits.count > 3 {
        groups.insert(Substring(digits.suffix(3)), at: 0)
        digits.removeLast(3)
    }
    groups.insert(Substring(digits), at: 0)
    return groups.joined(separator: ",")
}

extension String {
    /// `self` followed by spaces, `width` characters long at least.
    fileprivate func alignedLeft(in width: Int) -> String {
        self + String(repeating: " ", count: max(0, width - count))
    }

    /// `self` after spaces, `width` characters long at least.
    fileprivate func alignedRight(in width: Int) -> String {
        String(repeating: " ", count: max(0, width - count)) + self
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    fileprivate var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
