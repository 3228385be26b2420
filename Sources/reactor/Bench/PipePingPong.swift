import ArgumentParser
import Reactor

/// Round trips of one byte between two tasks over two pipes.
struct PipePingPong: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipes",
        abstract: "Pipe ping-pong: one-byte round trips per second, on one loop and across two.")

    @OptionGroup var options: BenchOptions

    @Option(help: "Round trips per run.")
    var roundTrips = 200_000

    func run() async throws {
        for backend in options.backends {
            try await withEventLoopGroup(loopCount: 2, backend: backend) { group in
                for (label, pongLoop) in [("one loop", group.loops[0]), ("two loops", group.loops[1])] {
                    _ = try await pingPong(roundTrips: roundTrips / 10, ping: group.loops[0], pong: pongLoop)
                    var samples: [Double] = []
                    for _ in 0..<options.runs {
                        let elapsed = try await pingPong(roundTrips: roundTrips, ping: group.loops[0], pong: pongLoop)
                        samples.append(Double(roundTrips) / elapsed)
                    }
                    report("pipe ping-pong, \(backend), \(label)", samples, unit: "round trips/s")
                }
            }
        }
    }

    /// Returns the seconds `roundTrips` round trips took.
    private func pingPong(roundTrips: Int, ping: EventLoop, pong: EventLoop) async throws -> Double {
        let there = try Pipe(on: pong)
        let back = try Pipe(on: ping)
        // One byte travels; reading into a larger buffer lets a short read prove the
        // pipe drained, as a real reader's would.
        let echo = Task(executorPreference: pong) {
            var buffer = [UInt8](repeating: 0, count: 64)
            while case let count = try await there.reader.read(into: &buffer), count > 0 {
                try await back.writer.write(buffer[..<count])
            }
        }
        let elapsed = try await Task(executorPreference: ping) {
            try await seconds {
                let byte: [UInt8] = [1]
                var buffer = [UInt8](repeating: 0, count: 64)
                for _ in 0..<roundTrips {
                    try await there.writer.write(byte)
                    _ = try await back.reader.read(into: &buffer)
                }
            }
        }.value
        try there.writer.close()
        try await echo.value
        for end in [there.reader.source, back.reader.source, back.writer.sink] { try end.close() }
        return elapsed
    }
}
