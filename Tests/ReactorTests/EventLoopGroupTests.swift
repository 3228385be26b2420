import Glibc
import Synchronization
import Testing

@testable import Reactor

extension ReactorTests {
    @Suite struct EventLoopGroupTests {
        @Test("shutting a group down resumes every waiting task with .loopShutDown", arguments: BackendKind.availableHere)
        func shutdownResumesWaiters(backend: BackendKind) async throws {
            let group = try await EventLoopGroup(loopCount: 2, backend: backend)
            var pipes: [Pipe] = []
            var waiting: [Task<Void, any Error>] = []
            for index in 0..<8 {
                let loop = group.loops[index % 2]
                let pipe = try Pipe(on: loop)
                pipes.append(pipe)
                waiting.append(Task(executorPreference: loop) { _ = try await pipe.reader.read(upTo: 1) })
                waiting.append(Task(executorPreference: loop) { try await loop.clock.sleep(for: .seconds(3_600)) })
            }
            for pipe in pipes { try await waitUntil { pipe.reader.source.io.isAwaitingRead } }
            await group.shutdownGracefully()
            for task in waiting {
                await #expect(throws: ReactorError.loopShutDown) { try await task.value }
            }
            // Closing after shutdown releases the descriptors without touching the dead backend.
            for pipe in pipes {
                try pipe.reader.close()
                try pipe.writer.close()
            }
        }

        @Test("after shutdown, registering and sleeping fail with .loopShutDown", arguments: BackendKind.availableHere)
        func refusesAfterShutdown(backend: BackendKind) async throws {
            let group = try await EventLoopGroup(loopCount: 1, backend: backend)
            let loop = group.loops[0]
            await group.shutdownGracefully()
            #expect(throws: ReactorError.loopShutDown) { _ = try Pipe(on: loop) }
            await #expect(throws: ReactorError.loopShutDown) { try await loop.clock.sleep(for: .milliseconds(1)) }
        }

        @Test("a task that outlives its loop continues on the default group", arguments: BackendKind.availableHere)
        func taskOutlivesLoop(backend: BackendKind) async throws {
            let group = try await EventLoopGroup(loopCount: 1, backend: backend)
            let loop = group.loops[0]
            let gate = try Pipe()
            let survivor = Task(executorPreference: loop) { () -> Bool in
                // Waits on a resource of the default group, then resumes after `loop` stopped.
                _ = try await gate.reader.read(upTo: 1)
                return EventLoop.current !== loop
            }
            try await waitUntil { gate.reader.source.io.isAwaitingRead }
            await group.shutdownGracefully()
            try await gate.writer.write([1])
            #expect(try await survivor.value)
            try gate.reader.close()
            try gate.writer.close()
        }

        @Test("shutdown ends while a task keeps re-queuing itself; the task goes on elsewhere", arguments: BackendKind.availableHere)
        func shutdownWithBusyTask(backend: BackendKind) async throws {
            let group = try await EventLoopGroup(loopCount: 1, backend: backend)
            let loop = group.loops[0]
            let running = Counter()
            let spinner = Task(executorPreference: loop) {
                while !Task.isCancelled {
                    running.increment()
                    await Task.yield()
                }
            }
            try await waitUntil { running.value > 0 }
            await group.shutdownGracefully()
            let before = running.value
            try await waitUntil { running.value > before + 10 }
            spinner.cancel()
            await spinner.value
        }

        @Test("shutdown ends wherever in the loop's turn it arrives, while jobs come from another thread",
              .serialized, .timeLimit(.minutes(1)), arguments: BackendKind.availableHere)
        func shutdownRacingJobs(backend: BackendKind) async throws {
            // The loop looks at its inbox twice before it blocks; a shutdown asked between
            // the two looks must still stop it. Jobs trickle in, each letting the loop go
            // idle, so that it passes those looks over and over while the shutdown arrives.
            for round in 0..<100 {
                let group = try await EventLoopGroup(loopCount: 1, backend: backend)
                let loop = group.loops[0]
                let ran = Counter()
                let producer = Task.detached {
                    for _ in 0..<40 {
                        loop.execute { ran.increment() }
                        usleep(UInt32(round % 4) * 10)
                    }
                }
                try await waitUntil { ran.value > 0 }
                await group.shutdownGracefully()
                await producer.value
                // Jobs handed over after the stop run on the default group: none is lost.
                try await waitUntil { ran.value == 40 }
            }
        }

        @Test("pending timer callbacks are dropped at shutdown, and scheduling during the drain is a no-op", arguments: BackendKind.availableHere)
        func timersAtShutdown(backend: BackendKind) async throws {
            let group = try await EventLoopGroup(loopCount: 1, backend: backend)
            let loop = group.loops[0]
            let pipe = try Pipe(on: loop)
            let ran = Counter()
            try await onLoop(loop) {
                _ = loop.schedule(at: loop.clock.now.advanced(by: .seconds(3_600))) { ran.increment() }
            }
            let task = Task(executorPreference: loop) { () -> Bool in
                do {
                    _ = try await pipe.reader.read(upTo: 1)
                    return false
                } catch ReactorError.loopShutDown {
                    // This runs in the shutdown drain, on the loop's thread, after the
                    // timers shut down.
                    let timer = loop.schedule(at: loop.clock.now) { ran.increment() }
                    timer.cancel()
                    return loop.isCurrent
                }
            }
            try await waitUntil { pipe.reader.source.io.isAwaitingRead }
            await group.shutdownGracefully()
            #expect(try await task.value)
            #expect(ran.value == 0)
            try pipe.reader.close()
            try pipe.writer.close()
        }

        @Test("next() hands out the loops round-robin")
        func roundRobin() async throws {
            try await withEventLoopGroup(loopCount: 3, backend: .default) { group in
                let handedOut = (0..<6).map { _ in ObjectIdentifier(group.next()) }
                #expect(Array(handedOut[0..<3]) == Array(handedOut[3..<6]))
                #expect(Set(handedOut).count == 3)
            }
        }
    }
}
