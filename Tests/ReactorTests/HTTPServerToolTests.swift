import CReactor
import Glibc
import Reactor
import ReactorServers
import SystemPackage
import Testing

/// Whether an executable named `name` is in a directory of `PATH`.
private func isOnPath(_ name: String) -> Bool {
    guard let path = getenv("PATH") else { return false }
    return String(cString: path).split(separator: ":").contains { directory in
        access("\(directory)/\(name)", X_OK) == 0
    }
}

/// What a program run by ``run(_:on:)`` did.
private struct Outcome {
    /// The exit status, or -1 if a signal ended it.
    var status: CInt
    /// What it wrote to standard output and standard error, interleaved.
    var output: String
}

/// Runs a program to its end and collects its output.
private func run(_ arguments: [String], on loop: EventLoop) async throws -> Outcome {
    let child = try ChildProcess.spawn(arguments, on: loop)
    let bytes: [UInt8]
    do {
        bytes = try await child.read()
    } catch {
        child.kill()
        throw error
    }
    try child.output.close()
    // The pipe's end of file means the program is exiting: this wait is short.
    return Outcome(status: child.reap(), output: String(decoding: bytes, as: UTF8.self))
}

/// The numbers in `line`, in order: "Socket errors: connect 0, read 2" gives [0, 2].
private func numbers(in line: Substring) -> [Int] {
    line.split { !$0.isNumber }.compactMap { Int($0) }
}

extension ReactorTests {
    @Suite(.timeLimit(.minutes(1))) struct HTTPServerToolTests {
        @Test("curl gets 200 over HTTP/1.1 and HTTP/1.0", .enabled(if: isOnPath("curl")), arguments: BackendKind.availableHere)
        func curl(backend: BackendKind) async throws {
            try await withServer(backend: backend, handler: { try await HTTPServer.handle($0) }) { address, loop in
                let url = "http://127.0.0.1:\(address.port!)/"
                for version in [["--http1.1"], ["--http1.0"]] {
                    let outcome = try await run(
                        ["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}"] + version + [url], on: loop)
                    #expect(outcome.status == 0, "\(outcome.output)")
                    #expect(outcome.output == "200", "\(version)")
                }
            }
        }

        @Test("wrk's keep-alive load gets only 2xx answers and no socket errors", .enabled(if: isOnPath("wrk")), arguments: BackendKind.availableHere)
        func wrk(backend: BackendKind) async throws {
            try await withServer(backend: backend, handler: { try await HTTPServer.handle($0) }) { address, loop in
                let outcome = try await run(["wrk", "-t1", "-c16", "-d2s", "http://127.0.0.1:\(address.port!)/"], on: loop)
                #expect(outcome.status == 0, "\(outcome.output)")
                let lines = outcome.output.split(separator: "\n")
                #expect(!outcome.output.contains("Non-2xx or 3xx responses"), "\(outcome.output)")
                if let errors = lines.first(where: { $0.contains("Socket errors") }) {
                    #expect(numbers(in: errors).allSatisfy { $0 == 0 }, "\(errors)")
                }
                let summary = try #require(lines.first { $0.contains(" requests in ") }, "\(outcome.output)")
                let requests = try #require(numbers(in: summary).first)
                #expect(requests > 0)
            }
        }
    }
}
