// Reactor's side of the timer, wake-up and task workloads (LoopBench): one EventLoop, its
// `schedule(at:_:)` timers, its `execute(_:)`, and tasks with the loop as their executor.
//
//   reactor-loop timers|wakeup|tasks [--backend epoll|uring|poll] [options of LoopArguments]
import LoopBench
import Reactor

/// An adapter of a few lines, so that the workload is LoopBench's and the same as SwiftNIO's.
struct ReactorLoop: LoopUnderTest {
    let loop: EventLoop

    func execute(_ body: @escaping @Sendable () -> Void) { loop.execute(body) }
    func now() -> LoopClock.Instant { loop.clock.now }
    func deadline(_ base: LoopClock.Instant, plusMilliseconds milliseconds: Int) -> LoopClock.Instant {
        base.advanced(by: .milliseconds(milliseconds))
    }
    func schedule(at deadline: LoopClock.Instant, _ body: @escaping @Sendable () -> Void) -> ScheduledTimer {
        loop.schedule(at: deadline, body)
    }
    func cancel(_ timer: ScheduledTimer) { timer.cancel() }
    func startTask(_ body: @escaping @Sendable (isolated (any Actor)?) async -> Void) {
        Task(executorPreference: loop) { await body(nil) }
    }
}

let arguments = LoopArguments(Array(CommandLine.arguments.dropFirst()), program: "reactor-loop", extra: ["--backend"])
guard let backend = BackendKind(rawValue: arguments.extra["--backend"] ?? "epoll") else {
    fail("unknown backend \(arguments.extra["--backend"]!)")
}
let group = try await EventLoopGroup(loopCount: 1, backend: backend)
arguments.run(on: ReactorLoop(loop: group.loops[0]))
await group.shutdownGracefully()
