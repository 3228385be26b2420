import Synchronization
import Testing

@testable import Reactor

/// An actor whose jobs run on an event loop.
private actor LoopBound {
    let loop: EventLoop
    var count = 0
    init(loop: EventLoop) { self.loop = loop }
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }

    func increment() -> Bool {
        count += 1
        return EventLoop.current === loop
    }
}

/// Reads the count synchronously, trusting the loop's `checkIsolated()`.
private func countAssumingIsolation(_ actor: LoopBound) -> Int {
    actor.assumeIsolated { $0.count }
}

extension ReactorTests {
    @Suite struct EventLoopTests {
        @Test("a task with the loop as executor preference runs on the loop's thread", arguments: BackendKind.availableHere)
        func taskRunsOnLoop(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                #expect(EventLoop.current == nil)
                let onLoop = try await onLoop(loop) { EventLoop.current === loop && loop.isCurrent }
                #expect(onLoop)
                #expect(loop.backend == backend)
            }
        }

        @Test("100,000 jobs enqueued from other threads all run on the loop", arguments: BackendKind.availableHere)
        func crossThreadJobs(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let ran = Counter()
                let offLoop = Counter()
                let producers = 4
                let perProducer = 25_000
                await withTaskGroup(of: Void.self) { producersGroup in
                    for _ in 0..<producers {
                        producersGroup.addTask {
                            await withTaskGroup(of: Void.self) { jobs in
                                for _ in 0..<perProducer {
                                    jobs.addTask(executorPreference: loop) {
                                        if !loop.isCurrent { offLoop.increment() }
                                        ran.increment()
                                    }
                                }
                            }
                        }
                    }
                }
                #expect(ran.value == producers * perProducer)
                #expect(offLoop.value == 0)
            }
        }

        @Test("an actor on the loop's serial executor runs on the loop and is isolated there", arguments: BackendKind.availableHere)
        func actorOnLoop(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let actor = LoopBound(loop: loop)
                var allOnLoop = true
                for _ in 0..<100 { allOnLoop = await actor.increment() && allOnLoop }
                #expect(allOnLoop)
                #expect(await actor.count == 100)
                let assumed = try await onLoop(loop) { countAssumingIsolation(actor) }
                #expect(assumed == 100)
            }
        }

        @Test("a busy loop still polls I/O: the job budget lets a pipe event through", arguments: BackendKind.availableHere)
        func budgetKeepsIOFlowing(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let stop = Counter()
                let pipe = try Pipe(on: loop)
                // A task that yields forever keeps the run queue non-empty.
                let spinner = Task(executorPreference: loop) {
                    while stop.value == 0 && !Task.isCancelled { await Task.yield() }
                }
                defer { spinner.cancel() }
                let reader = Task(executorPreference: loop) { try await pipe.reader.read(upTo: 1) }
                try await onLoop(loop) { try await pipe.writer.write([9]) }
                #expect(try await reader.value == [9])
                stop.increment()
                await spinner.value
                try pipe.reader.close()
                try pipe.writer.close()
            }
        }
    }
}
