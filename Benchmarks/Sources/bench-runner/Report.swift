// RESULTS.md and results.svg, written from the samples of one run. Never edited by hand.
import Foundation

/// The median, the minimum and the maximum of some rounds.
struct Spread {
    let median: Double
    let min: Double
    let max: Double

    init?(_ values: [Double]) {
        let sorted = values.filter { $0.isFinite }.sorted()
        guard !sorted.isEmpty else { return nil }
        let middle = sorted.count / 2
        median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        min = sorted.first!
        max = sorted.last!
    }
}

// MARK: - Number formatting

/// 158k, 1.2M, 912.
func compact(_ value: Double) -> String {
    switch abs(value) {
    case 1e6...: return String(format: "%.2fM", value / 1e6)
    case 1e5..<1e6: return String(format: "%.0fk", value / 1e3)
    case 1e3..<1e5: return String(format: "%.1fk", value / 1e3)
    default: return String(format: "%.0f", value)
    }
}

func decimal(_ value: Double, _ places: Int = 1) -> String { String(format: "%.\(places)f", value) }

/// "158k (150k–161k)": the median, then the range when there is more than one round.
func cell(_ spread: Spread?, rounds: Int, _ format: (Double) -> String = compact) -> String {
    guard let spread else { return "—" }
    return rounds > 1 ? "\(format(spread.median)) (\(format(spread.min))–\(format(spread.max)))" : format(spread.median)
}

func ratio(_ value: Double?, over base: Double?) -> String {
    guard let value, let base, base > 0, value.isFinite else { return "—" }
    return String(format: "%.2f×", value / base)
}

// MARK: - Machine

struct Machine {
    var kernel = "", cores = "", cpu = "", swift = "", nio = "", wrk = "", strace = "", perf = "", reactorCommit = ""

    static func read() -> Machine {
        var machine = Machine()
        machine.kernel = capture(["uname", "-r"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        machine.cores = capture(["nproc"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        machine.cpu = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last!.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        machine.swift = capture(["swift", "--version"]).output.split(separator: "\n")
            .first { $0.contains("Swift version") }.map(String.init) ?? "unknown"
        machine.nio = nioVersion() ?? "unknown"
        machine.wrk = capture(["sh", "-c", "wrk -v 2>&1 | head -1"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        machine.strace = capture(["sh", "-c", "strace -V 2>&1 | head -1"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        machine.perf = capture(["sh", "-c", "command -v perf >/dev/null && perf --version 2>&1 | head -1"]).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let commit = capture(["git", "-C", Paths.repositoryRoot, "rev-parse", "--short", "HEAD"]).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let dirty = !capture(["git", "-C", Paths.repositoryRoot, "status", "--porcelain", "--untracked-files=no"])
            .output.isEmpty
        machine.reactorCommit = commit + (dirty ? " with uncommitted changes" : "")
        return machine
    }

    /// The swift-nio version resolved for this package, from Package.resolved.
    private static func nioVersion() -> String? {
        guard let data = FileManager.default.contents(atPath: "\(Paths.benchmarks)/Package.resolved"),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let pins = root["pins"] as? [[String: Any]] else { return nil }
        let nio = pins.first { ($0["identity"] as? String) == "swift-nio" }
        return (nio?["state"] as? [String: Any])?["version"] as? String
    }
}

// MARK: - RESULTS.md

func writeReport(options: Options, programs: Programs, results: Results, elapsed: Double, directory: String) {
    let machine = Machine.read()
    let rounds = options.rounds
    let memoryAndLoopRounds = options.memoryAndLoopRounds < rounds
        ? " (\(options.memoryAndLoopRounds) for memory, timers, wake-ups and tasks)" : ""
    let command = (["cd Benchmarks && swift run -c release bench-runner"] + options.arguments).joined(separator: " ")
    var md = """
        # Reactor benchmarks: results

        Written by the runner; do not edit by hand. Produced by:

            \(command)

        in \(Int(elapsed)) s, \(options.quick ? "quick mode: " : "")\(rounds) round(s)\(memoryAndLoopRounds), \
        \(decimal(options.duration, 1)) s measured per run after \(decimal(options.warmup, 1)) s of warm-up \
        (echo). Method: ../shared/BENCHMARKS.md. \
        Servers on CPU 1 (`taskset -c 1`); the load generator (`LoadGenerator/loadgen.c`) or wrk on CPU 0 \
        ("split") or also on CPU 1 ("shared"). Each round starts every server afresh, in a rotated order. \
        Cells are "median (min–max)" over the rounds. Server CPU is utime+stime from /proc/PID/stat \
        around the measured window; "msgs per server CPU-s" is the efficiency figure that holds whoever \
        saturated first. Ratios compare medians.


        """
    if results.countsInstructions {
        md += """
            **Instructions per message** are the steadier comparison on this VM, whose speed varies between \
            rounds and runs: a slower CPU lowers every server's msgs per server CPU-s (by up to 2× between \
            rounds), but not the instructions it retires per message. They are read from the hardware counters \
            with `perf stat -x, -e \(EventCounter.instructions) -p PID`, started at the load generator's \
            `phase=measure` line and stopped (SIGINT) at its result line, the marks of the CPU-time reading, and \
            divided by the messages of that window (perf takes a few ms to attach, which every server loses \
            alike). "User" is the server's own code and libraries, and the steadiest; "kernel" is its system \
            calls and the loopback TCP work that runs in its context, which moves by up to ~15% with \
            contention (part of that work runs wherever the network softirq lands). Lower is better; \
            "instructions × C epoll" compares user plus kernel with the C floor's. Cache misses and stalls cost \
            time, not instructions: read them beside msgs per server CPU-s. The HTTP table counts them per \
            request, over the whole measured wrk run.


            """
    }
    md += """
        ## Machine

        | | |
        |---|---|
        | kernel | \(machine.kernel) |
        | cores | \(machine.cores) |
        | CPU | \(machine.cpu) |
        | Swift | \(machine.swift) |
        | swift-nio | \(machine.nio) |
        | Reactor | \(machine.reactorCommit) |
        | wrk | \(machine.wrk.isEmpty ? "not installed" : machine.wrk) |
        | strace | \(machine.strace.isEmpty ? "not installed" : machine.strace) |
        | perf | \(machine.perf.isEmpty ? "not installed" : machine.perf) |


        """
    if programs.reactor.anyServer {
        md += "Reactor's servers: `reactor echo`/`reactor http` with `--loops 1`, backends " +
            programs.reactor.backends.joined(separator: ", ") + ".\n"
        for note in programs.reactor.notes { md += "- \(note)\n" }
    } else {
        md += "**Reactor's servers were not available in this run**, so only the peers were measured:\n"
        for note in programs.reactor.notes { md += "- \(note)\n" }
    }
    md += "\n"

    func isReactor(_ name: String) -> Bool { name.hasPrefix("Reactor") }

    for figure in echoFigures {
        guard let byServer = results.echo[figure.id] else { continue }
        let efficiency = { (name: String) in Spread((byServer[name] ?? []).map(\.messagesPerCPUSecond)) }
        let latency = { (name: String) in Spread((byServer[name] ?? []).map(\.p50)) }
        let floor = efficiency("C epoll")?.median, uringFloor = efficiency("C io_uring")?.median
        let nio = efficiency("SwiftNIO")?.median
        let floorLatency = latency("C epoll")?.median
        let instructions = { (name: String) in Spread((byServer[name] ?? []).compactMap { $0.instructionsPerMessage?.total }) }
        let floorInstructions = instructions("C epoll")?.median
        let streaming = figure.size >= 1024
        let counted = results.countsInstructions
        md += "## \(figure.title)\n\n"
        if figure.reconnecting {
            md += "Each client connects, sends 64 B, reads the echo, closes and connects again, so every message is a "
            md += "connection the server accepts, serves and closes: msgs/s are connections per second, and p50 runs "
            md += "from the client's `connect` to the echo's last byte.\n\n"
        }
        md += "| server | msgs/s |\(streaming ? " MiB/s each way |" : "") p50 µs | p99 µs | msgs per server CPU-s | server CPU | × C epoll | × C io_uring | × SwiftNIO | p50 × C epoll |"
        md += counted ? " user instructions per msg | kernel instructions per msg | instructions × C epoll |\n" : "\n"
        md += "|---|---:|\(streaming ? "---:|" : "")---:|---:|---:|---:|---:|---:|---:|---:|\(counted ? "---:|---:|---:|" : "")\n"
        for server in results.echoServers {
            let samples = byServer[server.name] ?? []
            let mine = efficiency(server.name)?.median
            var row = "| \(server.name) | \(cell(Spread(samples.map(\.messagesPerSecond)), rounds: samples.count)) |"
            if streaming {
                row += " \(cell(Spread(samples.map { $0.messagesPerSecond * Double(figure.size) / 1_048_576 }), rounds: samples.count) { decimal($0, 0) }) |"
            }
            row += " \(cell(latency(server.name), rounds: samples.count) { decimal($0) }) |"
            row += " \(cell(Spread(samples.map(\.p99)), rounds: samples.count) { decimal($0) }) |"
            row += " \(cell(efficiency(server.name), rounds: samples.count)) |"
            row += " \(cell(Spread(samples.map(\.serverUtilisation)), rounds: samples.count) { "\(Int(($0 * 100).rounded()))%" }) |"
            row += " \(ratio(mine, over: floor)) | \(ratio(mine, over: uringFloor)) | \(ratio(mine, over: nio)) | \(ratio(latency(server.name)?.median, over: floorLatency)) |"
            if counted {
                row += " \(cell(Spread(samples.compactMap { $0.instructionsPerMessage?.user }), rounds: samples.count)) |"
                row += " \(cell(Spread(samples.compactMap { $0.instructionsPerMessage?.kernel }), rounds: samples.count)) |"
                row += " \(ratio(instructions(server.name)?.median, over: floorInstructions)) |"
            }
            md += row + "\n"
        }
        md += "\n"
    }

    if !results.http.isEmpty {
        let cpuPerRequest = { (name: String) in Spread((results.http[name] ?? []).map(\.cpuMicrosecondsPerRequest)) }
        let floor = cpuPerRequest("C epoll")?.median, nio = cpuPerRequest("SwiftNIO")?.median
        md += "## HTTP plaintext: `wrk -t1 -c64 -d\(max(1, Int(options.duration.rounded())))s --latency` (wrk on CPU 0)\n\n"
        md += "Any GET answered 200 \"Hello, World!\", keep-alive. Errors (socket errors plus non-2xx responses) must be 0. "
        md += "CPU ratios are server CPU per request (lower is better).\n\n"
        let counted = results.countsInstructions
        let instructions = { (name: String) in Spread((results.http[name] ?? []).compactMap { $0.instructionsPerRequest?.total }) }
        let floorInstructions = instructions("C epoll")?.median
        md += "| server | requests/s | p50 µs | p99 µs | server CPU µs per request | requests per server CPU-s | server CPU | CPU/request × C epoll | × SwiftNIO | errors |"
        md += counted ? " user instructions per request | kernel instructions per request | instructions × C epoll |\n" : "\n"
        md += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + (counted ? "---:|---:|---:|\n" : "\n")
        for server in results.httpServers {
            let samples = results.http[server.name] ?? []
            let mine = cpuPerRequest(server.name)?.median
            md += "| \(server.name) | \(cell(Spread(samples.map(\.requestsPerSecond)), rounds: samples.count))"
            md += " | \(cell(Spread(samples.map(\.p50)), rounds: samples.count) { decimal($0, 0) })"
            md += " | \(cell(Spread(samples.map(\.p99)), rounds: samples.count) { decimal($0, 0) })"
            md += " | \(cell(cpuPerRequest(server.name), rounds: samples.count) { decimal($0, 2) })"
            md += " | \(cell(Spread(samples.map(\.requestsPerCPUSecond)), rounds: samples.count))"
            md += " | \(cell(Spread(samples.map(\.serverUtilisation)), rounds: samples.count) { "\(Int(($0 * 100).rounded()))%" })"
            md += " | \(ratio(mine, over: floor)) | \(ratio(mine, over: nio)) | \(samples.isEmpty ? "—" : String(samples.map(\.errors).reduce(0, +))) |"
            if counted {
                md += " \(cell(Spread(samples.compactMap { $0.instructionsPerRequest?.user }), rounds: samples.count)) |"
                md += " \(cell(Spread(samples.compactMap { $0.instructionsPerRequest?.kernel }), rounds: samples.count)) |"
                md += " \(ratio(instructions(server.name)?.median, over: floorInstructions)) |"
            }
            md += "\n"
        }
        md += "\n"
    }

    if !results.syscalls.isEmpty {
        md += "## Syscalls per echo message (64 connections, split, `strace -c -f -p PID` over one load run)\n\n"
        md += "One run per server; strace slows the server a lot, so only the counts mean anything here "
        md += "(a slowed io_uring server also gathers more completions per `io_uring_enter`). "
        md += "On io_uring the reads and writes are not system calls; `io_uring_enter` is. "
        md += "The columns \"at full speed\" count the same server's calls in a second run, through perf's tracepoints "
        md += "(`perf stat -e \(EventCounter.syscalls) -p PID` over the load generator's measured window), which barely slow it: "
        md += "an io_uring server then gathers fewer completions per turn, and makes more calls per message.\n\n"
        md += "| server | messages traced | syscalls per message | io_uring_enter per message | the most frequent, per message "
        md += "| at full speed: syscalls per message | io_uring_enter per message |\n"
        md += "|---|---:|---:|---:|---|---:|---:|\n"
        for server in results.echoServers {
            guard let sample = results.syscalls[server.name] else {
                md += "| \(server.name) | — | — | — | — | — | — |\n"
                continue
            }
            let top = sample.calls.sorted { $0.value > $1.value }.prefix(5)
                .map { "\($0.key) \(decimal(sample.perMessage(of: $0.key), 2))" }.joined(separator: ", ")
            let enters = sample.calls["io_uring_enter"] == nil ? "—" : decimal(sample.perMessage(of: "io_uring_enter"), 3)
            let fast = sample.untraced?.perMessage(of: EventCounter.allSyscalls).map { decimal($0, 2) } ?? "—"
            // Like the traced column: a dash for a server that makes no io_uring_enter.
            let fastEnters = sample.calls["io_uring_enter"] == nil
                ? "—" : sample.untraced?.perMessage(of: EventCounter.uringEnters).map { decimal($0, 3) } ?? "—"
            md += "| \(server.name) | \(compact(sample.messages)) | \(decimal(sample.perMessage, 2)) | \(enters) | \(top) | \(fast) | \(fastEnters) |\n"
        }
        md += "\n"
    }

    if !results.allocations.isEmpty {
        md += "## Heap allocations per echo round trip (64 connections, split, steady state)\n\n"
        md += "`MallocCounter/malloc_counter.c` preloaded into the server; the count is read from its shared file "
        md += "as the load generator's measured window opens and closes (malloc, calloc, realloc, posix_memalign, aligned_alloc). One run per server.\n\n"
        md += "| server | messages | allocations in the window | allocations per message |\n|---|---:|---:|---:|\n"
        for server in results.echoServers {
            guard let sample = results.allocations[server.name] else {
                md += "| \(server.name) | — | — | — |\n"
                continue
            }
            md += "| \(server.name) | \(compact(sample.messages)) | \(Int(sample.allocations)) | \(decimal(sample.perMessage, 3)) |\n"
        }
        md += "\n"
    }

    md += memorySection(results: results)
    md += loopSection(results: results, workload: options.quick ? .quick : LoopWorkload())
    md += epollTargetSection(results: results, reactor: programs.reactor)
    md += uringTargetSection(results: results, reactor: programs.reactor)

    md += "## Not measured yet\n\n"
    md += "Peak RSS with one connection; tokio for HTTP, timers and wake-ups; libuv. See issue 4.\n\n"

    if !results.failures.isEmpty {
        md += "## Failures and omissions in this run\n\n"
        for failure in results.failures { md += "- \(failure)\n" }
        md += "\nServer logs: `Benchmarks/.build-peers/logs/`.\n"
    }

    try? md.write(toFile: "\(directory)/RESULTS.md", atomically: true, encoding: .utf8)
    try? chart(results: results, rounds: rounds, quick: options.quick)
        .write(toFile: "\(directory)/results.svg", atomically: true, encoding: .utf8)
}

// MARK: - results.svg

/// A grouped bar chart of messages (or requests) per server CPU-second: one group per figure, one
/// bar per server, whiskers from the minimum to the maximum round.
func chart(results: Results, rounds: Int, quick: Bool) -> String {
    var groups: [(label: String, bars: [(server: String, spread: Spread?)])] = []
    // Messages on connections that stay open; accepted connections are another scale.
    for figure in echoFigures where figure.size < 1024 && !figure.reconnecting {
        guard let byServer = results.echo[figure.id] else { continue }
        groups.append((figure.label,
                       results.echoServers.map { ($0.name, Spread((byServer[$0.name] ?? []).map(\.messagesPerCPUSecond))) }))
    }
    if !results.http.isEmpty {
        groups.append(("\(httpLabel) (requests)",
                       results.httpServers.map { ($0.name, Spread((results.http[$0.name] ?? []).map(\.requestsPerCPUSecond))) }))
    }
    let servers = results.echoServers.map(\.name)
    let colours = ["C epoll": "#6b6b6b", "C io_uring": "#2b2b2b", "SwiftNIO": "#f05138", "tokio": "#8a5a2b",
                   "Reactor epoll": "#1f6fb2", "Reactor uring": "#0b3b66", "Reactor poll": "#8cbde6"]

    let barWidth = 34.0, barGap = 6.0, groupGap = 46.0
    let left = 70.0, top = 70.0, plotHeight = 300.0, bottom = 70.0
    let groupWidth = Double(max(servers.count, 1)) * (barWidth + barGap) - barGap
    let width = max(720, left + Double(groups.count) * (groupWidth + groupGap) + 20)
    let height = top + plotHeight + bottom
    let highest = groups.flatMap { $0.bars.compactMap { $0.spread?.max } }.max() ?? 1
    let step = niceStep(highest / 5)
    let axisMax = (highest / step).rounded(.up) * step
    func y(_ value: Double) -> Double { top + plotHeight - value / axisMax * plotHeight }

    var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(Int(left))" y="24" font-size="16" font-weight="bold">Messages per server CPU-second (higher is better)</text>
        <text x="\(Int(left))" y="44" fill="#444">\(quick ? "quick run, " : "")median of \(rounds) round(s), whiskers min–max; server pinned to CPU 1. Written by bench-runner.</text>

        """
    var tick = 0.0
    while tick <= axisMax + step / 2 {
        svg += "<line x1=\"\(left)\" x2=\"\(width - 10)\" y1=\"\(y(tick))\" y2=\"\(y(tick))\" stroke=\"#e3e3e3\"/>\n"
        svg += "<text x=\"\(left - 6)\" y=\"\(y(tick) + 4)\" text-anchor=\"end\" fill=\"#444\">\(compact(tick))</text>\n"
        tick += step
    }
    svg += "<line x1=\"\(left)\" x2=\"\(left)\" y1=\"\(top)\" y2=\"\(top + plotHeight)\" stroke=\"#888\"/>\n"
    for (index, group) in groups.enumerated() {
        let x0 = left + groupGap / 2 + Double(index) * (groupWidth + groupGap)
        for (position, bar) in group.bars.enumerated() {
            let x = x0 + Double(position) * (barWidth + barGap)
            let colour = colours[bar.server] ?? "#999999"
            guard let spread = bar.spread else {
                svg += "<text x=\"\(x + barWidth / 2)\" y=\"\(top + plotHeight - 4)\" text-anchor=\"middle\" fill=\"#999\">n/a</text>\n"
                continue
            }
            svg += "<rect x=\"\(x)\" y=\"\(y(spread.median))\" width=\"\(barWidth)\" height=\"\(top + plotHeight - y(spread.median))\" fill=\"\(colour)\"><title>\(bar.server): \(compact(spread.median))</title></rect>\n"
            if spread.max > spread.min {
                let middle = x + barWidth / 2
                svg += "<path d=\"M\(middle) \(y(spread.min))V\(y(spread.max))M\(middle - 5) \(y(spread.min))h10M\(middle - 5) \(y(spread.max))h10\" stroke=\"#222\" fill=\"none\"/>\n"
            }
            svg += "<text x=\"\(x + barWidth / 2)\" y=\"\(y(spread.max) - 5)\" text-anchor=\"middle\" font-size=\"10\">\(compact(spread.median))</text>\n"
        }
        svg += "<text x=\"\(x0 + groupWidth / 2)\" y=\"\(top + plotHeight + 18)\" text-anchor=\"middle\">\(group.label)</text>\n"
    }
    var legendX = left
    for server in servers {
        svg += "<rect x=\"\(legendX)\" y=\"\(height - 30)\" width=\"12\" height=\"12\" fill=\"\(colours[server] ?? "#999999")\"/>\n"
        svg += "<text x=\"\(legendX + 17)\" y=\"\(height - 20)\">\(server)</text>\n"
        legendX += 30 + Double(server.count) * 7
    }
    return svg + "</svg>\n"
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
func niceStep(_ raw: Double) -> Double {
    guard raw > 0 else { return 1 }
    let power = pow(10, floor(log10(raw)))
    for factor in [1.0, 2, 5, 10] where factor * power >= raw { return factor * power }
    return 10 * power
}
