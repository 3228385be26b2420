// The servers under test, and how each is started on a port.
import Foundation

/// One server implementation of one protocol.
struct Server: Hashable {
    enum Family: Hashable { case c, nio, tokio, reactor }

    /// The name in tables and charts ("C epoll", "SwiftNIO", "Reactor epoll").
    let name: String
    let family: Family
    /// The command line for `port`, without the taskset prefix.
    let command: @Sendable (Int) -> [String]

    static func == (a: Server, b: Server) -> Bool { a.name == b.name }
    func hash(into hasher: inout Hasher) { hasher.combine(name) }
}

/// Where the built programs are.
struct Programs {
    let peers: String        // Benchmarks/.build-peers
    let swiftBin: String     // the Benchmarks package's release bin path
    let reactor: ReactorAvailability
    /// The tokio echo peer, when it could be built.
    let tokioEcho: String?
    /// The C io_uring echo peer, when it could be built and this kernel runs it.
    let uringEcho: String?

    var loadgen: String { "\(peers)/loadgen" }
    var holdconns: String { "\(peers)/holdconns" }
    var mallocCounter: String { "\(peers)/libmalloc_counter.so" }

    var echoServers: [Server] {
        var servers = [
            Server(name: "C epoll", family: .c) { ["\(peers)/epoll_echo", String($0)] },
        ]
        if let uringEcho {
            servers.append(uringEchoServer(uringEcho))
        }
        servers.append(Server(name: "SwiftNIO", family: .nio) { ["\(swiftBin)/nio-echo", "--port", String($0)] })
        if let tokioEcho {
            servers.append(Server(name: "tokio", family: .tokio) { [tokioEcho, String($0)] })
        }
        if let binary = reactor.binary, reactor.echo {
            for backend in reactor.backends {
                servers.append(Server(name: "Reactor \(backend)", family: .reactor) {
                    [binary, "echo", "--host", "127.0.0.1", "--port", String($0), "--loops", "1", "--backend", backend]
                })
            }
        }
        return servers
    }

    var httpServers: [Server] {
        var servers = [
            Server(name: "C epoll", family: .c) { ["\(peers)/epoll_http", String($0)] },
            Server(name: "SwiftNIO", family: .nio) { ["\(swiftBin)/nio-http", "--port", String($0)] },
        ]
        if let binary = reactor.binary, reactor.http {
            for backend in reactor.backends {
                servers.append(Server(name: "Reactor \(backend)", family: .reactor) {
                    [binary, "http", "--host", "127.0.0.1", "--port", String($0), "--loops", "1", "--backend", backend]
                })
            }
        }
        return servers
    }
}

/// `Peers/uring_echo.c`, built at `path`: the io_uring floor.
func uringEchoServer(_ path: String) -> Server {
    Server(name: "C io_uring", family: .c) { [path, String($0)] }
}

/// What the main package's `reactor` executable offers, found out by asking it.
struct ReactorAvailability {
    var binary: String?
    var echo = false
    var http = false
    var backends: [String] = []
    /// Whether this package's `reactor-loop` (the timer, wake-up and task workloads) was built.
    var loopProgram = false
    /// Why Reactor is missing from some figures, for RESULTS.md.
    var notes: [String] = []

    var anyServer: Bool { binary != nil && (echo || http) && !backends.isEmpty }
}

/// A server process pinned to a CPU, listening on `port`.
struct RunningServer {
    let server: Server
    let child: Child
    let port: Int
    let log: String
}

enum StartError: Error, CustomStringConvertible {
    case exited(String, log: String)
    case notListening(String, log: String)

    var description: String {
        switch self {
        case .exited(let name, let log): return "\(name) exited during start-up: \(tail(of: log))"
        case .notListening(let name, let log): return "\(name) did not listen within 20 s: \(tail(of: log))"
        }
    }
}

/// The last lines of the file at `path`, on one line.
func tail(of path: String, lines: Int = 3) -> String {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "(no log)" }
    return text.split(separator: "\n").suffix(lines).joined(separator: " | ")
}

/// Starts `server` on CPU `cpu` and waits until it accepts connections.
func start(_ server: Server, port: Int, cpu: Int, logDirectory: String,
           environment: [String: String] = [:]) throws -> RunningServer {
    let slug = server.name.lowercased().replacingOccurrences(of: " ", with: "-")
    let log = "\(logDirectory)/server-\(slug)-\(port).log"
    let child = try spawn(["taskset", "-c", String(cpu)] + server.command(port), output: .file(log),
                          environment: environment)
    let deadline = monotonicSeconds() + 20
    while monotonicSeconds() < deadline {
        if !child.isRunning() { throw StartError.exited(server.name, log: log) }
        if acceptsConnections(port: port) {
            // Let the server finish with the probe connection before the load starts.
            usleep(100_000)
            return RunningServer(server: server, child: child, port: port, log: log)
        }
        usleep(50_000)
    }
    child.stop(signal: SIGKILL)
    throw StartError.notListening(server.name, log: log)
}
