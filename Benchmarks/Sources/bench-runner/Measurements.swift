// One measured run of each kind: echo ping-pong through the C load generator, HTTP through wrk,
// syscalls through strace, heap allocations through the LD_PRELOAD counter.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One echo run: what the load generator saw, and the server's CPU time over the same window.
struct EchoSample {
    var messages: Double
    var seconds: Double
    var messagesPerSecond: Double
    var p50: Double  // µs
    var p99: Double  // µs
    var serverCPU: Double  // seconds
    /// The events perf counted over the same window, by name; nil when they were not counted.
    var counts: [String: Double]?

    var messagesPerCPUSecond: Double { serverCPU > 0 ? messages / serverCPU : 0 }
    var serverUtilisation: Double { seconds > 0 ? serverCPU / seconds : 0 }
    var instructionsPerMessage: Instructions? { counts.flatMap(Instructions.init)?.per(messages) }
    /// `event`'s count per message, if it was counted.
    func perMessage(of event: String) -> Double? {
        guard let count = counts?[event], messages > 0 else { return nil }
        return count / messages
    }
}

/// One wrk run.
struct HTTPSample {
    var requests: Double
    var requestsPerSecond: Double
    var p50: Double  // µs
    var p99: Double  // µs
    var errors: Int  // socket errors plus non-2xx responses
    var serverCPU: Double
    var seconds: Double
    /// The server's instructions over the measured wrk run; nil when they were not counted.
    var instructions: Instructions? = nil

    var cpuMicrosecondsPerRequest: Double { requests > 0 ? serverCPU / requests * 1e6 : 0 }
    var instructionsPerRequest: Instructions? { instructions?.per(requests) }
    var requestsPerCPUSecond: Double { serverCPU > 0 ? requests / serverCPU : 0 }
    var serverUtilisation: Double { seconds > 0 ? serverCPU / seconds : 0 }
}

struct SyscallSample {
    var messages: Double
    var calls: [String: Double]  // per syscall, over the whole window
    var total: Double
    /// An echo run of the same server at full speed, with its system calls counted through the
    /// tracepoints (``EventCounter/syscalls``), if perf has them.
    var untraced: EchoSample?
    var perMessage: Double { messages > 0 ? total / messages : 0 }
    func perMessage(of call: String) -> Double { messages > 0 ? (calls[call] ?? 0) / messages : 0 }
}

struct AllocationSample {
    var messages: Double
    var allocations: Double
    var perMessage: Double { messages > 0 ? allocations / messages : 0 }
}

struct MeasurementError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// `key=value` pairs of the load generator's result line.
func parseFields(_ line: String) -> [String: Double] {
    var fields = [String: Double]()
    for pair in line.split(separator: " ") {
        let parts = pair.split(separator: "=", maxSplits: 1)
        if parts.count == 2, let value = Double(parts[1]) { fields[String(parts[0])] = value }
    }
    return fields
}

struct LoadgenResult {
    var fields: [String: Double]
    /// Read at the line `phase=measure`, and at the result line.
    var marks: [Double]
}

/// Runs the load generator against `port`, pinned to `cpu`, calling `mark` when the measured window
/// opens and when it closes (the result line); each call's return value is kept in `marks`. With
/// `reconnecting`, every message goes over a new connection.
func runLoadgen(_ programs: Programs, port: Int, connections: Int, size: Int, warmup: Double,
                duration: Double, cpu: Int, reconnecting: Bool = false, mark: () -> Double) throws -> LoadgenResult {
    let command = ["taskset", "-c", String(cpu), programs.loadgen, "--port", String(port),
                   "--connections", String(connections), "--size", String(size),
                   "--warmup", String(warmup), "--duration", String(duration)]
        + (reconnecting ? ["--reconnect"] : [])
    let child = try spawn(command, output: .pipe)
    var result: [String: Double]? = nil
    var marks = [Double]()
    var transcript = [String]()
    readLines(from: child, timeout: warmup + duration + 30) { line in
        transcript.append(line)
        if line.hasPrefix("phase=measure") {
            marks.append(mark())
        } else if line.hasPrefix("messages=") {
            marks.append(mark())
            result = parseFields(line)
        }
    }
    let status = child.wait()
    guard let result, marks.count == 2 else {
        throw MeasurementError("load generator (exit \(status)): \(transcript.suffix(3).joined(separator: " | "))")
    }
    if status != 0 || (result["errors"] ?? 0) > 0 {
        throw MeasurementError("load generator saw \(Int(result["errors"] ?? 0)) failed connections (exit \(status))")
    }
    return LoadgenResult(fields: result, marks: marks)
}

/// One echo run. With a `counter`, the server's events (its instructions, or its system calls) are
/// counted over the same window as its CPU time: perf starts at the window's first mark and is
/// stopped at its second. A count that fails is logged and left out; the run still counts.
func measureEcho(_ programs: Programs, server: RunningServer, connections: Int, size: Int,
                 warmup: Double, duration: Double, loadgenCPU: Int, reconnecting: Bool = false,
                 counter: EventCounter? = nil) throws -> EchoSample {
    let pid = server.child.pid
    var counting: Counting? = nil
    var countingFailure: Error? = nil
    let run: LoadgenResult
    do {
        run = try runLoadgen(programs, port: server.port, connections: connections, size: size,
                             warmup: warmup, duration: duration, cpu: loadgenCPU, reconnecting: reconnecting) {
            let cpu = cpuSeconds(of: pid) ?? .nan
            if let counting {
                counting.stop()
            } else if let counter {
                do { counting = try counter.start(pid: pid) } catch { countingFailure = error }
            }
            return cpu
        }
    } catch {
        counting?.cancel()
        throw error
    }
    var counts: [String: Double]? = nil
    do { counts = try counting?.read() } catch { countingFailure = error }
    if let countingFailure { log("    events not counted: \(countingFailure)") }
    guard server.child.isRunning() else { throw MeasurementError("\(server.server.name) exited during the run") }
    let f = run.fields
    return EchoSample(messages: f["messages"] ?? 0, seconds: f["seconds"] ?? 0,
                      messagesPerSecond: f["msgs_per_sec"] ?? 0, p50: f["p50_us"] ?? 0,
                      p99: f["p99_us"] ?? 0, serverCPU: run.marks[1] - run.marks[0],
                      counts: counts)
}

/// `wrk -t1 -cN -dS --latency` pinned to `cpu`, after a one-second warm-up run. With a `counter`,
/// the server's instructions are counted over the measured wrk run, as its CPU time is (wrk's
/// connection set-up included, a few requests' worth); a count that fails is logged and left out.
func measureHTTP(server: RunningServer, connections: Int, duration: Double, cpu: Int,
                 counter: EventCounter? = nil) throws -> HTTPSample {
    let url = "http://127.0.0.1:\(server.port)/"
    let wrk = ["taskset", "-c", String(cpu), "wrk", "-t1", "-c\(connections)"]
    _ = capture(wrk + ["-d1s", url], timeout: 30)
    let seconds = max(1, Int(duration.rounded()))
    var counting: Counting? = nil
    var countingFailure: Error? = nil
    if let counter {
        do { counting = try counter.start(pid: server.child.pid) } catch { countingFailure = error }
    }
    let before = cpuSeconds(of: server.child.pid) ?? .nan
    let (status, output) = capture(wrk + ["-d\(seconds)s", "--latency", url], timeout: Double(seconds) + 30)
    let after = cpuSeconds(of: server.child.pid) ?? .nan
    counting?.stop()
    var instructions: Instructions? = nil
    do { if let counts = try counting?.read() { instructions = Instructions(counts) } } catch { countingFailure = error }
    if let countingFailure { log("    instructions not counted: \(countingFailure)") }
    guard status == 0, server.child.isRunning() else {
        throw MeasurementError("wrk exit \(status): \(output.split(separator: "\n").suffix(3).joined(separator: " | "))")
    }
    var sample = HTTPSample(requests: 0, requestsPerSecond: 0, p50: 0, p99: 0, errors: 0,
                            serverCPU: after - before, seconds: Double(seconds), instructions: instructions)
    for rawLine in output.split(separator: "\n") {
        let words = rawLine.split(separator: " ")
        guard let first = words.first else { continue }
        if words.count >= 4, words[1] == "requests", words[2] == "in", let count = Double(first) {
            sample.requests = count
            sample.seconds = Double(words[3].dropLast(2)) ?? sample.seconds  // "5.00s,"
        } else if first == "Requests/sec:", words.count >= 2 {
            sample.requestsPerSecond = Double(words[1]) ?? 0
        } else if first == "Socket", words.count >= 10 {
            // Socket errors: connect 0, read 0, write 0, timeout 0
            for index in [3, 5, 7, 9] { sample.errors += Int(words[index].filter(\.isNumber)) ?? 0 }
        } else if first == "Non-2xx", let count = Int(words.last ?? "") {
            sample.errors += count
        } else if first == "50%", words.count >= 2 {
            sample.p50 = microseconds(String(words[1]))
        } else if first == "99%", words.count >= 2 {
            sample.p99 = microseconds(String(words[1]))
        }
    }
    guard sample.requests > 0 else { throw MeasurementError("wrk reported no requests") }
    return sample
}

/// wrk's "835.00us", "1.20ms", "2.00s" in microseconds.
private func microseconds(_ text: String) -> Double {
    for (suffix, scale) in [("us", 1.0), ("ms", 1e3), ("s", 1e6)] where text.hasSuffix(suffix) {
        return (Double(text.dropLast(suffix.count)) ?? 0) * scale
    }
    return Double(text) ?? 0
}

/// Attaches `strace -c -f` to the server for one load-generator run (no warm-up, so every message
/// it counts falls inside the traced window) and divides the calls by the messages.
func measureSyscalls(_ programs: Programs, server: RunningServer, connections: Int, duration: Double,
                     loadgenCPU: Int, logDirectory: String) throws -> SyscallSample {
    let summary = "\(logDirectory)/strace-\(server.port).txt"
    let strace = try spawn(["strace", "-c", "-f", "-p", String(server.child.pid), "-o", summary],
                           output: .file("\(summary).log"))
    // strace reports each attached thread; give it time to attach to all of them.
    usleep(700_000)
    let run: LoadgenResult
    do {
        run = try runLoadgen(programs, port: server.port, connections: connections, size: 64,
                             warmup: 0, duration: duration, cpu: loadgenCPU) { 0 }
    } catch {
        strace.stop(signal: SIGINT, grace: 10)
        throw error
    }
    strace.stop(signal: SIGINT, grace: 10)
    guard let text = try? String(contentsOfFile: summary, encoding: .utf8) else {
        throw MeasurementError("strace wrote no summary (\(tail(of: "\(summary).log")))")
    }
    var calls = [String: Double]()
    var total = 0.0
    for line in text.split(separator: "\n") {
        let words = line.split(separator: " ")
        // "% time  seconds  usecs/call  calls  [errors]  syscall"
        guard words.count >= 5, Double(words[0]) != nil, let count = Double(words[3]) else { continue }
        let name = String(words.last!)
        if name == "total" { total = count } else { calls[name] = count }
    }
    guard total > 0 else { throw MeasurementError("strace counted no syscalls") }
    return SyscallSample(messages: run.fields["total_messages"] ?? 0, calls: calls, total: total)
}

/// Runs the server's echo under the malloc counter (started by the caller with LD_PRELOAD and
/// MALLOC_COUNTER_FILE=`counterFile`) and reads the count as the measured window opens and closes.
func measureAllocations(_ programs: Programs, server: RunningServer, counterFile: String, connections: Int,
                        warmup: Double, duration: Double, loadgenCPU: Int) throws -> AllocationSample {
    func count() -> Double {
        guard let handle = FileHandle(forReadingAtPath: counterFile) else { return .nan }
        defer { try? handle.close() }
        let bytes = handle.readData(ofLength: 8)
        guard bytes.count == 8 else { return .nan }
        return Double(bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
    }
    let run = try runLoadgen(programs, port: server.port, connections: connections, size: 64,
                             warmup: warmup, duration: duration, cpu: loadgenCPU, mark: count)
    guard !run.marks[0].isNaN, !run.marks[1].isNaN else {
        throw MeasurementError("the malloc counter file was not written (was LD_PRELOAD honoured?)")
    }
    return AllocationSample(messages: run.fields["messages"] ?? 0, allocations: run.marks[1] - run.marks[0])
}
