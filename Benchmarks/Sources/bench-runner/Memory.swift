// The memory figure: the server's resident set at start and with many idle connections, read from
// /proc/PID/status while `holdconns` (LoadGenerator/holdconns.c) holds the connections open.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// VmRSS and VmHWM of a process, in KiB.
struct Resident {
    var rss: Double
    var peak: Double
}

/// `VmRSS` and `VmHWM` from /proc/PID/status.
func resident(of pid: pid_t) -> Resident? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    var values = [String: Double]()
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") || line.hasPrefix("VmHWM:") {
        // "VmRSS:\t   12345 kB"
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        if words.count >= 2 { values[String(words[0].dropLast())] = Double(words[1]) }
    }
    guard let rss = values["VmRSS"], let peak = values["VmHWM"] else { return nil }
    return Resident(rss: rss, peak: peak)
}

struct MemorySample {
    var connections: Int
    var start: Resident
    var loaded: Resident

    /// The growth of the peak resident set, per connection, in KiB.
    var kibPerConnection: Double { (loaded.peak - start.peak) / Double(connections) }
}

/// Reads the server's resident set, has `holdconns` (pinned to `cpu`) open `connections`
/// connections with one echo round trip each, reads it again while they are held idle, and
/// lets them go.
func measureMemory(_ programs: Programs, server: RunningServer, connections: Int, cpu: Int) throws -> MemorySample {
    let pid = server.child.pid
    guard let start = resident(of: pid) else { throw MeasurementError("cannot read /proc/\(pid)/status") }
    let holder = try spawn(["taskset", "-c", String(cpu), programs.holdconns, "--port", String(server.port),
                            "--connections", String(connections), "--hold", "60"], output: .pipe)
    var loaded: Resident?
    var transcript = [String]()
    readLines(from: holder, timeout: 90) { line in
        transcript.append(line)
        guard line.hasPrefix("ready") else { return }
        // Let the server finish the last round trip's bookkeeping before reading.
        usleep(300_000)
        loaded = resident(of: pid)
        kill(holder.pid, SIGTERM)
    }
    holder.wait()
    guard server.child.isRunning() else { throw MeasurementError("\(server.server.name) exited while holding connections") }
    guard let loaded else {
        throw MeasurementError("holdconns: \(transcript.suffix(2).joined(separator: " | "))")
    }
    return MemorySample(connections: connections, start: start, loaded: loaded)
}
