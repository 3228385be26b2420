import Reactor
import ReactorServers
import Testing

extension ReactorTests {
    @Suite(.timeLimit(.minutes(1))) struct EchoBenchmarkTests {
        @Test("a short run against the in-process echo server reports messages and ordered percentiles", arguments: BackendKind.availableHere)
        func shortRun(backend: BackendKind) async throws {
            try await withEventLoopGroup(loopCount: 1, backend: backend) { servers in
                try await withEventLoopGroup(loopCount: 1, backend: backend) { clients in
                    let server = try TCPServer(bindingTo: .ipv4(127, 0, 0, 1, port: 0), on: servers.loops) {
                        try await EchoServer.handle($0)
                    }
                    let benchmark = EchoBenchmark(connections: 4, messageSize: 64, warmUp: .zero, duration: .milliseconds(500))
                    let progress = Recorder<EchoBenchmark.Progress>()
                    let report = try await benchmark.run(
                        against: server.address, clientLoops: clients.loops, serverLoops: servers.loops
                    ) { progress.append($0) }
                    #expect(try await server.shutdown(gracePeriod: .seconds(30)), "every client closed its connection")

                    #expect(report.messages > 0)
                    #expect(report.latency.count > 0)
                    #expect(report.elapsed >= .milliseconds(500))
                    #expect(report.messagesPerSecond > 0)
                    let (p50, p99, p999) = (report.latency.percentile(0.5), report.latency.percentile(0.99), report.latency.percentile(0.999))
                    #expect(p50 > .zero)
                    #expect(p50 <= p99)
                    #expect(p99 <= p999)
                    #expect(p999 <= .nanoseconds(report.latency.maximum))
                    let cpu = try #require(report.serverCPUTime)
                    #expect(cpu > .zero)
                    #expect(try #require(report.serverCPUTimePerMessage) > .zero)
                    #expect(progress.elements.map(\.phase) == [.measuring], "one report for half a second, and no warm-up")
                }
            }
        }
    }
}
