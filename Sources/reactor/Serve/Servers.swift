#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import Reactor
import ReactorServers

/// `reactor echo`: the echo server.
struct EchoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo",
        abstract: "Run an echo server (every byte is written back) until SIGINT or SIGTERM.")

    @OptionGroup var options: ServerOptions

    @Option(help: "The TCP port to listen on.")
    var port: UInt16 = 7000

    func run() async throws {
        try await options.serve("echo", port: port) { try await EchoServer.handle($0) }
    }
}

/// `reactor http`: the plaintext HTTP/1.1 server.
struct HTTPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "Run an HTTP/1.1 server that answers every GET with \"Hello, World!\", until SIGINT or SIGTERM.")

    @OptionGroup var options: ServerOptions

    @Option(help: "The TCP port to listen on.")
    var port: UInt16 = 8080

    func run() async throws {
        try await options.serve("http", port: port) { try await HTTPServer.handle($0) }
    }
}

/// The options every server command shares.
struct ServerOptions: ParsableArguments {
    @Option(help: "The IP address to listen on (IPv4 or IPv6, no name).")
    var host = "127.0.0.1"

    @Option(help: "Event loops (threads) to serve on, each with a listener of its own on the same port (SO_REUSEPORT).")
    var loops = 1

    @Option(help: "The I/O backend.")
    var backend: BackendKind = .default

    /// How long open connections may take to end after a stop signal, before they are cut.
    static let gracePeriod = Duration.seconds(10)

    func validate() throws {
        guard loops > 0 else { throw ValidationError("--loops must be at least 1") }
        guard (try? SocketAddress(ipAddress: host, port: 0)) != nil else {
            throw ValidationError("--host must be an IPv4 or IPv6 address, not \"\(host)\"")
        }
    }

    /// Serves with `handler` until SIGINT or SIGTERM, then stops gracefully: the listeners
    /// close, and the open connections get ``gracePeriod`` to end.
    func serve(_ name: String, port: UInt16, handler: @escaping @Sendable (TCPStream) async throws -> Void) async throws {
        let address = try SocketAddress(ipAddress: host, port: port)
        try await withEventLoopGroup(loopCount: loops, backend: backend) { group in
            let signals = try SignalWatcher([SIGINT, SIGTERM], on: group.loops[0])
            defer { signals.close() }
            let server = try TCPServer(bindingTo: address, on: group.loops, handler: handler)
            say("\(name) server on \(server.address): \(loops) loop\(loops == 1 ? "" : "s"), \(backend) backend; SIGINT or SIGTERM stops it")
            let signal = try await signals.next()
            signals.restoreDefaultActions()
            say("\(signalName(signal)): no longer accepting; open connections get \(Self.gracePeriod) to end (a second signal quits at once)")
            let drained = try await server.shutdown(gracePeriod: Self.gracePeriod)
            say(drained ? "stopped" : "stopped; the connections still open were closed")
        }
    }
}
