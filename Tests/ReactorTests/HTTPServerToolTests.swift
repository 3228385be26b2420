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

/// Runs a program, found in `PATH` by the first of `arguments`, with an empty environment
/// (so no proxy settings apply) and standard input from /dev/null; reads its output
/// through a pipe registered on `loop`, then reaps it.
private func run(_ arguments: [String], on loop: EventLoop) async throws -> Outcome {
    // Both ends close-on-exec from birth, so no other child inherits them.
    var ends: [CInt] = [-1, -1]
    guard creactor_pipe(&ends) == 0 else { throw IOError(.create, Errno(rawValue: errno)) }
    // The child's end blocks, as programs expect of their output.
    _ = fcntl(ends[1], F_SETFL, fcntl(ends[1], F_GETFL) & ~O_NONBLOCK)

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, ends[1], 1)
    posix_spawn_file_actions_adddup2(&actions, ends[1], 2)
    let argv = arguments.map { strdup($0) } + [nil]
    defer { for argument in argv { free(argument) } }
    let environment: [UnsafeMutablePointer<CChar>?] = [nil]
    var pid = pid_t()
    let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, argv, environment)
    close(ends[1])
    guard spawned == 0 else {
        close(ends[0])
        throw IOError(.create, Errno(rawValue: spawned))
    }

    let output = try AsyncFD(FileDescriptor(rawValue: ends[0]), on: loop)
    var bytes: [UInt8] = []
    do {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = try await output.whenReadable { (fd) throws(Errno) in
                let count = buffer.withUnsafeMutableBytes { Glibc.read(fd.rawValue, $0.baseAddress, $0.count) }
                if count < 0 { throw Errno(rawValue: errno) }
                return count
            }
            if count == 0 { break }
            bytes += buffer[..<count]
        }
    } catch {
        try? output.close()
        kill(pid, SIGKILL)
        _ = waitpid(pid, nil, 0)
        throw error
    }
    try output.close()
    // The pipe's end of file means the program is exiting: this wait is short.
    var status: CInt = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    let exited = status & 0x7F == 0
    return Outcome(status: exited ? (status >> 8) & 0xFF : -1, output: String(decoding: bytes, as: UTF8.self))
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
