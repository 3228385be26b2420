import Testing

@testable import Reactor

extension ReactorTests {
    @Suite struct ExecuteTests {
        @Test("closures from one other thread run in order, on the loop's thread", arguments: BackendKind.availableHere)
        func orderFromOneThread(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let order = Recorder<Int>()
                let offLoop = Counter()
                let count = 10_000
                await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                    Task.detached {
                        for index in 0..<count {
                            loop.execute {
                                if !loop.isCurrent { offLoop.increment() }
                                order.append(index)
                                if index == count - 1 { done.resume() }
                            }
                        }
                    }
                }
                #expect(order.elements == Array(0..<count))
                #expect(offLoop.value == 0)
            }
        }

        @Test("on the loop's thread, execute queues the closure behind the caller", arguments: BackendKind.availableHere)
        func fromTheLoop(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let order = Recorder<String>()
                try await onLoop(loop) {
                    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                        loop.execute {
                            order.append(loop.isCurrent ? "closure on the loop" : "closure elsewhere")
                            done.resume()
                        }
                        order.append("caller")
                    }
                }
                #expect(order.elements == ["caller", "closure on the loop"])
            }
        }

        @Test("closures from several threads each run once, on the loop's thread", arguments: BackendKind.availableHere)
        func fromManyThreads(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let ran = Counter()
                let offLoop = Counter()
                let producers = 4
                let perProducer = 10_000
                await withTaskGroup(of: Void.self) { group in
                    for _ in 0..<producers {
                        group.addTask {
                            for _ in 0..<perProducer {
                                loop.execute {
                                    if !loop.isCurrent { offLoop.increment() }
                                    ran.increment()
                                }
                            }
                        }
                    }
                }
                try await waitUntil { ran.value == producers * perProducer }
                #expect(offLoop.value == 0)
            }
        }

        @Test("after shutdown, the closure runs once on a default-group loop", arguments: BackendKind.availableHere)
        func afterShutdown(backend: BackendKind) async throws {
            let group = try await EventLoopGroup(loopCount: 1, backend: backend)
            let loop = group.loops[0]
            await group.shutdownGracefully()
            let ran = Counter()
            let (onStoppedLoop, onSomeLoop) = await withCheckedContinuation { continuation in
                loop.execute {
                    ran.increment()
                    continuation.resume(returning: (loop.isCurrent, EventLoop.current != nil))
                }
            }
            #expect(!onStoppedLoop)
            #expect(onSomeLoop)
            #expect(ran.value == 1)
        }
    }
}
