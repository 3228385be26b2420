import ArgumentParser
import Reactor

@main
struct ReactorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reactor",
        abstract: "Reactor's command-line tool: example servers, benchmarks and diagnostics of the event loop.",
        subcommands: [EchoCommand.self, HTTPCommand.self, Bench.self, Backends.self]
    )
}

/// Lists the backends this machine can run.
struct Backends: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the I/O backends available here; the default (or REACTOR_BACKEND) first.")

    func run() {
        for kind in BackendKind.availableHere {
            print(kind == .default ? "\(kind) (default)" : "\(kind)")
        }
    }
}

extension BackendKind: ExpressibleByArgument {}
