// SwiftNIO's side of the timer and wake-up workloads (LoopBench): one NIOPosix event loop, its
// `scheduleTask(deadline:_:)` timers and its `execute(_:)`.
//
//   nio-loop timers|wakeup [options of LoopArguments]
import LoopBench
import NIOCore
import NIOPosix

/// An adapter of a few lines, so that the workload is LoopBench's and the same as Reactor's.
struct NIOLoop: LoopUnderTest {
    let loop: any EventLoop

    func execute(_ body: @escaping @Sendable () -> Void) { loop.execute(body) }
    func now() -> NIODeadline { .now() }
    func deadline(_ base: NIODeadline, plusMilliseconds milliseconds: Int) -> NIODeadline {
        base + .milliseconds(Int64(milliseconds))
    }
    func schedule(at deadline: NIODeadline, _ body: @escaping @Sendable () -> Void) -> Scheduled<Void> {
        loop.scheduleTask(deadline: deadline, body)
    }
    func cancel(_ timer: Scheduled<Void>) { timer.cancel() }
}

let arguments = LoopArguments(Array(CommandLine.arguments.dropFirst()), program: "nio-loop")
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
arguments.run(on: NIOLoop(loop: group.next()))
try group.syncShutdownGracefully()
