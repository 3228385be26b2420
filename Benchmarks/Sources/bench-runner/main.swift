// bench-runner: builds the peers, runs Reactor's servers and the peers' alternately, pinned, for
// several rounds, and writes Benchmarks/RESULTS.md and Benchmarks/results.svg.
//
//   cd Benchmarks && swift run -c release bench-runner [--quick] [options]
//
// The method is ../shared/BENCHMARKS.md's: the server on CPU 1, the load generator on CPU 0
// ("split") or also on CPU 1 ("shared"); every server once per round, the order rotated each round;
// medians and min–max over the rounds; the server's CPU time read from /proc/PID/stat around each
// measured window, so "messages per server CPU-second" holds whoever saturated first; and, where
// perf counts them, the server's instructions over the same window, which hold whatever speed the
// VM runs at.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var quick = false
    var smoke = false
    var rounds = 5
    var warmup = 0.5
    var duration = 3.0
    var build = true
    var buildReactor = true
    var reactor = true
    /// The two servers of a paired comparison, and its figure (split-64 if not given).
    var pair: (first: String, second: String)?
    var figure: String?
    var arguments: [String] = []

    /// Rounds of the memory, timer, wake-up and task figures: BENCHMARKS.md's minimum of 3 rather than
    /// `rounds`, since two more rounds of them would add 2 to 4 minutes to a run of about 20. The
    /// memory figure does not vary between rounds anyway.
    var memoryAndLoopRounds: Int { min(rounds, 3) }

    static let usage = """
        usage: bench-runner [--quick | --smoke | --pair A B [--figure ID]] [--rounds N] [--duration SECONDS]
                            [--warmup SECONDS] [--no-build] [--no-reactor-build] [--no-reactor]
          --quick             1 round, 1-second runs, fewer figures (under 3 minutes)
          --smoke             the CI build check: build everything, start every server and loop
                              program once for a moment, check that it answers; exit 0 or 1;
                              writes no RESULTS.md
          --rounds N          rounds of every server per echo and HTTP figure (default 5); the
                              memory, timer, wake-up and task figures run at most 3
          --duration S        measured seconds per run (default 3)
          --warmup S          warm-up seconds before each echo run (default 0.5)
          --no-build          use the programs already built (the C peers are still compiled)
          --no-reactor-build  do not build the main package; use its release `reactor` if present
          --no-reactor        measure the peers only
          --pair A B          compare two echo servers by name ("Reactor uring", "C io_uring") on one
                              figure: every round measures both back to back, the order swapped each
                              round; prints each round's ratio A / B of msgs per server CPU-s and
                              their median with a 95% confidence interval (default 20 rounds);
                              writes no RESULTS.md
          --figure ID         the figure of --pair: shared-1, split-64 (default), split-1000,
                              stream-64k, accept-64
        """

    init(_ arguments: [String]) {
        self.arguments = arguments
        var iterator = arguments.makeIterator()
        func value(_ name: String) -> Double {
            guard let text = iterator.next(), let number = Double(text), number > 0 else {
                fail("\(name) needs a positive number\n\(Options.usage)")
            }
            return number
        }
        var explicitRounds: Int?, explicitDuration: Double?, explicitWarmup: Double?
        while let argument = iterator.next() {
            switch argument {
            case "--quick": quick = true
            case "--smoke": smoke = true
            case "--rounds": explicitRounds = Int(value(argument))
            case "--duration": explicitDuration = value(argument)
            case "--warmup": explicitWarmup = value(argument)
            case "--no-build": build = false
            case "--no-reactor-build": buildReactor = false
            case "--no-reactor": reactor = false
            case "--pair":
                guard let first = iterator.next(), let second = iterator.next() else {
                    fail("--pair needs two server names\n\(Options.usage)")
                }
                pair = (first, second)
            case "--figure":
                guard let id = iterator.next() else { fail("--figure needs a figure\n\(Options.usage)") }
                figure = id
            case "-h", "--help": print(Options.usage); exit(0)
            default: fail("unknown option \(argument)\n\(Options.usage)")
            }
        }
        if pair != nil, quick || smoke { fail("--pair runs alone, without --quick or --smoke\n\(Options.usage)") }
        if pair == nil, figure != nil { fail("--figure goes with --pair\n\(Options.usage)") }
        if quick { (rounds, warmup, duration) = (1, 0.5, 1) }
        if pair != nil { rounds = 20 }
        rounds = explicitRounds ?? rounds
        // Fewer than 6 ratios bound no 95% interval for their median.
        if pair != nil, rounds < 6 { fail("--pair needs at least 6 rounds\n\(Options.usage)") }
        duration = explicitDuration ?? duration
        warmup = explicitWarmup ?? warmup
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("bench-runner: \(message)\n".utf8))
    exit(1)
}

func log(_ message: String) {
    print(message)
    fflush(nil)
}

// MARK: - Paths

enum Paths {
    /// Benchmarks/, found from this file's path so the runner works from any directory.
    static let benchmarks = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let repositoryRoot = URL(fileURLWithPath: benchmarks).deletingLastPathComponent().path
    static let peers = "\(benchmarks)/.build-peers"
    static let logs = "\(peers)/logs"
}

// MARK: - Building

/// Compiles the C peers, the load generator and the malloc counter into .build-peers/. Only the io_uring
/// echo peer may fail (it needs Linux 6.0's <linux/io_uring.h>); returns its path, or nil with the
/// reason in `notes`.
func buildPeers(notes: inout [String]) -> String? {
    try? FileManager.default.createDirectory(atPath: Paths.logs, withIntermediateDirectories: true)
    func cc(_ output: String, _ arguments: [String]) -> (status: CInt, output: String) {
        capture(["cc", "-O2", "-Wall", "-o", "\(Paths.peers)/\(output)"] + arguments, directory: Paths.benchmarks)
    }
    let jobs: [(String, [String])] = [
        ("epoll_echo", ["Peers/epoll_echo.c"]),
        ("epoll_http", ["Peers/epoll_http.c"]),
        ("loadgen", ["LoadGenerator/loadgen.c"]),
        ("holdconns", ["LoadGenerator/holdconns.c"]),
        ("libmalloc_counter.so", ["-shared", "-fPIC", "MallocCounter/malloc_counter.c", "-ldl"]),
    ]
    for (name, arguments) in jobs {
        let (status, output) = cc(name, arguments)
        if status != 0 { fail("cc \(name) failed:\n\(output)") }
    }
    let (status, output) = cc("uring_echo", ["Peers/uring_echo.c"])
    guard status == 0 else {
        try? output.write(toFile: "\(Paths.logs)/uring_echo-build.log", atomically: true, encoding: .utf8)
        notes.append("No C io_uring peer: `cc Peers/uring_echo.c` failed (.build-peers/logs/uring_echo-build.log).")
        return nil
    }
    return "\(Paths.peers)/uring_echo"
}

/// Whether the io_uring echo peer at `path` starts and echoes on this kernel (it needs Linux 6.0 or
/// later, and io_uring not disabled); returns `path` if so, or nil with the reason in `notes`.
func runnableUringEcho(_ path: String?, ports: PortAllocator, notes: inout [String]) -> String? {
    guard let path else { return nil }
    do {
        let running = try start(uringEchoServer(path), port: ports.fresh(), cpu: 1, logDirectory: Paths.logs)
        defer { running.child.stop() }
        let probe = Array("io_uring".utf8)
        let answer = try exchange(port: running.port, probe)
        guard answer == probe else { throw MeasurementError("it answered \(answer.count) bytes, not its probe") }
        return path
    } catch {
        let kernel = capture(["uname", "-r"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        notes.append("No C io_uring peer: `uring_echo` does not run on this kernel (\(kernel); it needs Linux 6.0+): \(error)")
        return nil
    }
}

/// Builds the tokio echo peer offline against Debian's crates (`librust-tokio-dev`) into
/// .build-peers/tokio/; returns its path, or nil with the reason in `notes`.
func buildTokioEcho(notes: inout [String]) -> String? {
    let registry = "/usr/share/cargo/registry"
    guard capture(["sh", "-c", "command -v cargo"]).status == 0,
          (try? FileManager.default.contentsOfDirectory(atPath: registry))?.contains(where: { $0.hasPrefix("tokio-1.") }) == true
    else {
        notes.append("No tokio peer: it needs `cargo` and Debian's crates (`apt-get install -y librust-tokio-dev`).")
        return nil
    }
    log("building tokio-echo (cargo build --release --offline)…")
    let (status, output) = capture([
        "cargo", "build", "--release", "--offline", "--manifest-path", "Peers/tokio-echo/Cargo.toml",
        "--target-dir", "\(Paths.peers)/tokio", "--config", "source.crates-io.replace-with=\"debian\"",
        "--config", "source.debian.directory=\"\(registry)\"",
    ], directory: Paths.benchmarks)
    guard status == 0 else {
        try? output.write(toFile: "\(Paths.logs)/tokio-build.log", atomically: true, encoding: .utf8)
        notes.append("No tokio peer: `cargo build` failed (.build-peers/logs/tokio-build.log).")
        return nil
    }
    return "\(Paths.peers)/tokio/release/tokio-echo"
}

/// The products of this package that stand for SwiftNIO.
let nioProducts = ["nio-echo", "nio-http", "nio-loop"]

/// `swift build` options for this package.
let benchmarksPackage = ["--package-path", Paths.benchmarks, "--scratch-path", "\(Paths.benchmarks)/.build"]

/// Builds (unless told not to) and locates the SwiftNIO peers of this package.
func swiftPeersBinPath(build: Bool) -> String {
    let package = benchmarksPackage
    if build {
        for product in nioProducts {
            log("building \(product) (swift build -c release)…")
            let (status, output) = capture(["swift", "build", "-c", "release", "--product", product] + package)
            if status != 0 { fail("swift build --product \(product) failed:\n\(output.suffix(3000))") }
        }
    }
    let (status, output) = capture(["swift", "build", "-c", "release", "--show-bin-path"] + package)
    let path = output.trimmingCharacters(in: .whitespacesAndNewlines)
    if status != 0 { fail("swift build --show-bin-path failed: \(output)") }
    for product in nioProducts where !FileManager.default.isExecutableFile(atPath: "\(path)/\(product)") {
        fail("\(path)/\(product) is missing: run without --no-build")
    }
    return path
}

/// Builds the main package's `reactor` executable (unless told not to) and asks it which servers
/// and backends it has. Every shortfall is noted rather than fatal: the peers run without it.
func findReactor(options: Options, swiftBin: String) -> ReactorAvailability {
    var found = ReactorAvailability()
    guard options.reactor else {
        found.notes.append("Reactor was left out (`--no-reactor`).")
        return found
    }
    let package = ["--package-path", Paths.repositoryRoot]
    if options.build && options.buildReactor {
        log("building reactor (swift build -c release at the repository root)…")
        let (status, output) = capture(["swift", "build", "-c", "release", "--product", "reactor"] + package)
        if status != 0 {
            found.notes.append("`swift build -c release --product reactor` failed; an earlier build was used if present.")
            try? output.write(toFile: "\(Paths.logs)/reactor-build.log", atomically: true, encoding: .utf8)
        }
    }
    let (status, output) = capture(["swift", "build", "-c", "release", "--show-bin-path"] + package)
    let binary = output.trimmingCharacters(in: .whitespacesAndNewlines) + "/reactor"
    guard status == 0, FileManager.default.isExecutableFile(atPath: binary) else {
        found.notes.append("No release `reactor` binary was found at the repository root.")
        return found
    }
    found.binary = binary
    // ArgumentParser answers `reactor unknown --help` with the root's help and status 0, so the
    // subcommand's own usage line must be there too.
    func offers(_ subcommand: String) -> Bool {
        let (status, help) = capture([binary, subcommand, "--help"], timeout: 20)
        return status == 0 && help.contains("reactor \(subcommand)") && help.contains("--port")
            && help.contains("--backend") && help.contains("--loops")
    }
    found.echo = offers("echo")
    found.http = offers("http")
    if !found.echo { found.notes.append("`reactor echo --help` failed: Reactor's echo server is not available yet.") }
    if !found.http { found.notes.append("`reactor http --help` failed: Reactor's HTTP server is not available yet.") }
    let listed = capture([binary, "backends"], timeout: 20)
    let available = listed.output.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
    found.backends = ["epoll", "uring", "poll"].filter { available.contains($0) }
    if found.backends.isEmpty {
        found.notes.append("`reactor backends` listed none of epoll, uring, poll.")
    } else if !found.backends.contains("uring") {
        found.notes.append("`reactor backends` does not list uring (the kernel refuses io_uring): no Reactor uring figures.")
    }
    found.loopProgram = buildReactorLoop(build: options.build, swiftBin: swiftBin)
    if !found.loopProgram {
        found.notes.append("`reactor-loop` (this package) did not build: no Reactor timer, wake-up or task figures.")
    }
    return found
}

/// Builds this package's `reactor-loop`, which links the library under test; returns whether it
/// built (told not to build: whether an earlier build is there).
func buildReactorLoop(build: Bool, swiftBin: String) -> Bool {
    guard build else { return FileManager.default.isExecutableFile(atPath: "\(swiftBin)/reactor-loop") }
    log("building reactor-loop (swift build -c release)…")
    // SwiftPM plans this package's build again when its manifest changes, but not when the
    // library it takes by path gains a source file: the build then fails on the new file's
    // symbols. A manifest that looks changed makes it plan from the sources as they are.
    try? FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: "\(Paths.benchmarks)/Package.swift")
    let (status, output) = capture(["swift", "build", "-c", "release", "--product", "reactor-loop"] + benchmarksPackage)
    guard status == 0 else {
        // An earlier build's binary would measure other code than the one under test.
        log("reactor-loop did not build; see \(Paths.logs)/reactor-loop-build.log")
        try? output.write(toFile: "\(Paths.logs)/reactor-loop-build.log", atomically: true, encoding: .utf8)
        return false
    }
    return FileManager.default.isExecutableFile(atPath: "\(swiftBin)/reactor-loop")
}

// MARK: - Figures

/// A figure measured over rounds.
struct EchoFigure {
    let id: String
    let title: String
    let connections: Int
    let size: Int
    let loadgenCPU: Int
    let full: Bool  // only in the full run
    /// The figure in a few words, for the chart and the targets.
    let label: String
    /// Whether each message goes over a connection of its own (the load generator's
    /// `--reconnect`): then a message per second is a connection accepted per second.
    var reconnecting = false
}

/// The HTTP figure in a few words.
let httpLabel = "HTTP wrk 64 conns"

let echoFigures = [
    EchoFigure(id: "shared-1", title: "Echo 64 B, 1 connection, shared CPU (server and load on CPU 1)",
               connections: 1, size: 64, loadgenCPU: 1, full: false, label: "echo 1 conn, shared"),
    EchoFigure(id: "split-64", title: "Echo 64 B, 64 connections, split (server CPU 1, load CPU 0)",
               connections: 64, size: 64, loadgenCPU: 0, full: false, label: "echo 64 conns, split"),
    EchoFigure(id: "split-1000", title: "Echo 64 B, 1,000 connections, split",
               connections: 1000, size: 64, loadgenCPU: 0, full: true, label: "echo 1,000 conns, split"),
    EchoFigure(id: "stream-64k", title: "Echo 64 KiB messages, 1 connection, split (one 64 KiB write in flight)",
               connections: 1, size: 65536, loadgenCPU: 0, full: true, label: "echo 64 KiB, 1 conn"),
    EchoFigure(id: "accept-64", title: "Accept bursts: 64 clients, each connection one 64 B echo, then closed, split",
               connections: 64, size: 64, loadgenCPU: 0, full: true, label: "accept, 1 msg per conn",
               reconnecting: true),
]

final class Results {
    var echo: [String: [String: [EchoSample]]] = [:]  // figure id → server → rounds
    var http: [String: [HTTPSample]] = [:]
    var syscalls: [String: SyscallSample] = [:]
    var allocations: [String: AllocationSample] = [:]
    var memory: [String: [MemorySample]] = [:]
    var loop: [String: [LoopSample]] = [:]
    var loopPrograms: [LoopProgram] = []
    var failures: [String] = []
    /// Whether perf counted instructions in this run (the echo tables then have their columns).
    var countsInstructions = false
    var echoServers: [Server] = []
    var httpServers: [Server] = []
}

/// The servers (or programs) in round `round`'s order: rotated so none always runs first.
func rotated<Contestant>(_ contestants: [Contestant], round: Int) -> [Contestant] {
    guard !contestants.isEmpty else { return contestants }
    let shift = round % contestants.count
    return Array(contestants[shift...] + contestants[..<shift])
}

/// A new port for every server start: no TIME_WAIT or lingering listener from the previous one.
final class PortAllocator {
    private var next = 20_000 + Int(getpid() % 500) * 20
    func fresh() -> Int {
        while acceptsConnections(port: next) { next += 1 }
        defer { next += 1 }
        return next
    }
}

func runAll(options: Options, programs: Programs, ports: PortAllocator, results: Results) {
    let hasWrk = capture(["sh", "-c", "command -v wrk"]).status == 0
    let hasStrace = capture(["sh", "-c", "command -v strace"]).status == 0
    var counter: EventCounter? = nil
    do {
        counter = try EventCounter.probe(EventCounter.instructions)
    } catch {
        log("No instruction counts: \(error)")
        results.failures.append("No instruction counts: \(error).")
    }
    results.countsInstructions = counter != nil
    results.echoServers = programs.echoServers
    results.httpServers = programs.httpServers
    results.loopPrograms = programs.loopPrograms

    for figure in echoFigures where options.quick ? !figure.full : true {
        eachRound(figure.id, results.echoServers, rounds: options.rounds, name: \.name, results: results) { server in
            let running = try start(server, port: ports.fresh(), cpu: 1, logDirectory: Paths.logs)
            defer { running.child.stop() }
            let sample = try measureEcho(programs, server: running, connections: figure.connections,
                                         size: figure.size, warmup: options.warmup,
                                         duration: options.duration, loadgenCPU: figure.loadgenCPU,
                                         reconnecting: figure.reconnecting, counter: counter)
            results.echo[figure.id, default: [:]][server.name, default: []].append(sample)
            let summary = String(format: "%.0f msgs/s, p50 %.1f µs, %.0f msgs per server CPU-s",
                                 sample.messagesPerSecond, sample.p50, sample.messagesPerCPUSecond)
            guard let each = sample.instructionsPerMessage else { return summary }
            return summary + String(format: ", %.0f + %.0f instructions per message (user + kernel)", each.user, each.kernel)
        }
    }

    if hasWrk {
        eachRound("http", results.httpServers, rounds: options.rounds, name: \.name, results: results) { server in
            let running = try start(server, port: ports.fresh(), cpu: 1, logDirectory: Paths.logs)
            defer { running.child.stop() }
            let sample = try measureHTTP(server: running, connections: 64, duration: options.duration, cpu: 0,
                                         counter: counter)
            results.http[server.name, default: []].append(sample)
            let summary = String(format: "%.0f req/s, %.2f µs server CPU per request, %d errors",
                                 sample.requestsPerSecond, sample.cpuMicrosecondsPerRequest, sample.errors)
            guard let each = sample.instructionsPerRequest else { return summary }
            return summary + String(format: ", %.0f + %.0f instructions per request (user + kernel)", each.user, each.kernel)
        }
    } else {
        results.failures.append("wrk is not installed (`apt-get install -y wrk`): no HTTP figures.")
    }

    var tracer: EventCounter? = nil
    do {
        tracer = try EventCounter.probe(EventCounter.syscalls)
    } catch {
        results.failures.append("No syscall counts at full speed: \(error).")
    }
    if hasStrace {
        for server in results.echoServers {
            log("[syscalls] \(server.name)")
            do {
                let running = try start(server, port: ports.fresh(), cpu: 1, logDirectory: Paths.logs)
                defer { running.child.stop() }
                var sample = try measureSyscalls(programs, server: running, connections: 64,
                                                 duration: options.quick ? 1 : 2, loadgenCPU: 0,
                                                 logDirectory: Paths.logs)
                if let tracer {
                    sample.untraced = try measureEcho(programs, server: running, connections: 64, size: 64,
                                                      warmup: options.warmup, duration: options.quick ? 1 : 2,
                                                      loadgenCPU: 0, counter: tracer)
                }
                results.syscalls[server.name] = sample
                log(String(format: "    %.2f syscalls per message traced, %.2f at full speed", sample.perMessage,
                           sample.untraced?.perMessage(of: EventCounter.allSyscalls) ?? .nan))
            } catch {
                results.failures.append("syscalls, \(server.name): \(error)")
                log("    failed: \(error)")
            }
        }
    } else {
        results.failures.append("strace is not installed: no syscall counts.")
    }

    for server in results.echoServers {
        log("[allocations] \(server.name)")
        let counterFile = "\(Paths.logs)/malloc-count-\(server.name.lowercased().replacingOccurrences(of: " ", with: "-"))"
        do {
            let running = try start(server, port: ports.fresh(), cpu: 1, logDirectory: Paths.logs,
                                    environment: ["LD_PRELOAD": programs.mallocCounter,
                                                  "MALLOC_COUNTER_FILE": counterFile])
            defer { running.child.stop() }
            let sample = try measureAllocations(programs, server: running, counterFile: counterFile,
                                                connections: 64, warmup: options.quick ? 0.5 : 1,
                                                duration: options.quick ? 1 : 2, loadgenCPU: 0)
            results.allocations[server.name] = sample
            log(String(format: "    %.3f allocations per message", sample.perMessage))
        } catch {
            results.failures.append("allocations, \(server.name): \(error)")
            log("    failed: \(error)")
        }
    }

    eachRound("memory", results.echoServers, rounds: options.memoryAndLoopRounds, name: \.name, results: results) { server in
        let running = try start(server, port: ports.fresh(), cpu: 1, logDirectory: Paths.logs)
        defer { running.child.stop() }
        let sample = try measureMemory(programs, server: running, connections: idleConnections, cpu: 0)
        results.memory[server.name, default: []].append(sample)
        return String(format: "%.1f MiB at start, %.1f MiB with %d connections: %.2f KiB per connection",
                      sample.start.peak / 1024, sample.loaded.peak / 1024, sample.connections, sample.kibPerConnection)
    }

    let workload = options.quick ? LoopWorkload.quick : LoopWorkload()
    eachRound("loop", results.loopPrograms, rounds: options.memoryAndLoopRounds, name: \.name, results: results) { program in
        let sample = try measureLoop(program, workload: workload)
        results.loop[program.name, default: []].append(sample)
        return String(format: "schedule + cancel %.0f / %.0f ns, %.0f fired per CPU-s, wake p50 %.1f µs, %.0f jobs/s, "
                      + "%.0f CPU ns per task resumption",
                      sample["earliest_ns_per_pair"]!, sample["anywhere_ns_per_pair"]!, sample["fired_per_cpu_sec"]!,
                      sample["p50_us"]!, sample["jobs_per_sec"]!, sample["ns_per_resume"]!)
    }
}

/// Measures every contestant once per round, in an order rotated each round. Logs the summary
/// `measure` returns, or records the failure it throws and goes on.
func eachRound<Contestant>(_ label: String, _ contestants: [Contestant], rounds: Int,
                           name: KeyPath<Contestant, String>, results: Results,
                           _ measure: (Contestant) throws -> String) {
    for round in 0..<rounds {
        for contestant in rotated(contestants, round: round) {
            log("[\(label)] round \(round + 1)/\(rounds): \(contestant[keyPath: name])")
            do {
                log("    " + (try measure(contestant)))
            } catch {
                results.failures.append("\(label), round \(round + 1), \(contestant[keyPath: name]): \(error)")
                log("    failed: \(error)")
            }
        }
    }
}

/// Idle connections held open for the memory figure.
let idleConnections = 10_000

// MARK: - Main

let options = Options(Array(CommandLine.arguments.dropFirst()))
let startedAt = monotonicSeconds()
raiseOpenFileLimit()
signal(SIGPIPE, SIG_IGN)
log(options.smoke ? "bench-runner: smoke run (the build check: every program once, briefly)"
    : options.pair != nil ? "bench-runner: paired comparison, \(options.rounds) round(s), \(options.duration) s per run"
    : "bench-runner: \(options.quick ? "quick" : "full") run, \(options.rounds) round(s), \(options.duration) s per run")
var peerNotes: [String] = []
let ports = PortAllocator()
let uringEcho = runnableUringEcho(buildPeers(notes: &peerNotes), ports: ports, notes: &peerNotes)
let swiftBin = swiftPeersBinPath(build: options.build)
let reactor = findReactor(options: options, swiftBin: swiftBin)
log(reactor.anyServer
    ? "Reactor: \(reactor.binary!) (echo: \(reactor.echo), http: \(reactor.http), backends: \(reactor.backends.joined(separator: ", ")))"
    : "Reactor's servers are not available: \(reactor.notes.joined(separator: " "))")
let tokioEcho = buildTokioEcho(notes: &peerNotes)
let programs = Programs(peers: Paths.peers, swiftBin: swiftBin, reactor: reactor, tokioEcho: tokioEcho,
                        uringEcho: uringEcho)
for note in peerNotes { log(note) }
if options.smoke {
    let failures = smokeCheck(programs: programs, ports: ports)
    log("bench-runner --smoke: \(failures.isEmpty ? "every program answered" : "\(failures.count) failed") "
        + "in \(Int(monotonicSeconds() - startedAt)) s")
    for failure in failures { log("  \(failure)") }
    exit(failures.isEmpty ? 0 : 1)
}
if let pair = options.pair {
    let compared = comparePair(pair.first, pair.second, figureID: options.figure ?? "split-64", options: options,
                               programs: programs, ports: ports)
    exit(compared ? 0 : 1)
}
let results = Results()
results.failures += peerNotes
runAll(options: options, programs: programs, ports: ports, results: results)
let elapsed = monotonicSeconds() - startedAt
writeReport(options: options, programs: programs, results: results, elapsed: elapsed,
            directory: Paths.benchmarks)
log("wrote \(Paths.benchmarks)/RESULTS.md and results.svg in \(Int(elapsed)) s")
