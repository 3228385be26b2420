// SwiftNIO's side of the timer, wake-up and task workloads (LoopBench): one NIOPosix event
// loop, its `scheduleTask(deadline:_:)` timers, its `execute(_:)`, and tasks isolated to an
// actor that runs on the loop (SwiftNIO's loops are serial executors, not task executors).
//
//   nio-loop timers|wakeup|tasks [options of LoopArguments]
import LoopBench
import NIOCore
import NIOPosix

/// An adapter of a few lines, so that the workload is LoopBench's and the same as Reactor's.
struct NIOLoop: LoopUnderTest {
    let loop: any EventLoop
    let actor: OnLoop

    func execute(_ body: @escaping @Sendable () -> Void) { loop.execute(body) }
    func now() -> NIODeadline { .now() }
    func deadline(_ base: NIODeadline, plusMilliseconds milliseconds: Int) -> NIODeadline {
        base + .milliseconds(Int64(milliseconds))
    }
    func schedule(at deadline: NIODeadline, _ body: @escaping @Sendable () -> Void) -> Scheduled<Void> {
        loop.scheduleTask(deadline: deadline, body)
    }
    func cancel(_ timer: Scheduled<Void>) { timer.cancel() }
    func startTask(_ body: @escaping @Sendable (isolated (any Actor)?) async -> Void) {
        Task { await actor.run(body) }
    }
}

/// An actor whose jobs run on the loop, the way async code keeps its state on a SwiftNIO loop.
actor OnLoop {
    let loop: any EventLoop

    init(loop: any EventLoop) { self.loop = loop }

    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.executor.asUnownedSerialExecutor() }

    func run(_ body: @Sendable (isolated (any Actor)?) async -> Void) async { await body(self) }
}

let arguments = LoopArguments(Array(CommandLine.arguments.dropFirst()), program: "nio-loop")
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let loop = group.next()
arguments.run(on: NIOLoop(loop: loop, actor: OnLoop(loop: loop)))
try group.syncShutdownGracefully()
