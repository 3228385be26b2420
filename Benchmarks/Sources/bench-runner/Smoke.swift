// The CI build check (`--smoke`): everything was built; now start every server and loop program
// once, for a moment, and check that each answers. No figure is kept or asserted.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs every check and returns what failed; an empty list means every program answered.
func smokeCheck(programs: Programs, ports: PortAllocator) -> [String] {
    var failures: [String] = []
    func check(_ label: String, _ body: () throws -> String) {
        do {
            log("[smoke] \(label): \(try body())")
        } catch {
            log("[smoke] \(label): FAILED: \(error)")
            failures.append("\(label): \(error)")
        }
    }
    if !programs.reactor.anyServer || !programs.reactor.echo || !programs.reactor.http || !programs.reactor.loopProgram {
        failures.append("Reactor is incomplete: \(programs.reactor.notes.joined(separator: " "))")
    }
    for server in programs.echoServers {
        check("echo, \(server.name)") {
            let running = try start(server, port: ports.fresh(), cpu: 1, logDirectory: Paths.logs)
            defer { running.child.stop() }
            let sample = try measureEcho(programs, server: running, connections: 1, size: 64,
                                         warmup: 0.2, duration: 1, loadgenCPU: 0)
            let memory = try measureMemory(programs, server: running, connections: 100, cpu: 0)
            guard sample.messages > 0 else { throw MeasurementError("no message came back") }
            return String(format: "%.0f msgs/s; 100 idle connections held (%.1f KiB each)",
                          sample.messagesPerSecond, memory.kibPerConnection)
        }
    }
    for server in programs.httpServers {
        check("http, \(server.name)") {
            let running = try start(server, port: ports.fresh(), cpu: 1, logDirectory: Paths.logs)
            defer { running.child.stop() }
            let status = try httpStatusLine(port: running.port)
            guard status.hasPrefix("HTTP/1.1 200") else { throw MeasurementError("answered \"\(status)\"") }
            return status
        }
    }
    for program in programs.loopPrograms {
        check("loop, \(program.name)") {
            let sample = try measureLoop(program, workload: .smoke)
            return String(format: "%.0f ns per schedule + cancel, wake p50 %.1f µs",
                          sample["earliest_ns_per_pair"]!, sample["p50_us"]!)
        }
    }
    return failures
}

/// The status line of the answer to one `GET /` on 127.0.0.1:`port`.
func httpStatusLine(port: Int) throws -> String {
    let answer = try exchange(port: port, Array("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
    return String(decoding: answer, as: UTF8.self).split(separator: "\r\n").first.map(String.init) ?? ""
}

/// Sends `request` on a new connection to 127.0.0.1:`port` and returns the first read of the answer
/// (at most 4 KiB, within 5 s).
func exchange(port: Int, _ request: [UInt8]) throws -> [UInt8] {
    guard let fd = connectLoopback(port: port) else { throw MeasurementError("cannot connect") }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    guard write(fd, request, request.count) == request.count else { throw MeasurementError("cannot send") }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = read(fd, &buffer, buffer.count)
    guard count > 0 else { throw MeasurementError("no answer") }
    return Array(buffer[..<count])
}
