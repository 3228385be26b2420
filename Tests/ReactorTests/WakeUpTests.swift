import Glibc
import SystemPackage
import Testing

@testable import Reactor

extension ReactorTests {
    @Suite struct WakeUpTests {
        // A producer that won the inbox's wake-up flag may write only after the loop
        // stopped and closed its descriptor, whose number the next open reuses.
        @Test("a wake-up after the backend closed writes nowhere, though the number of its descriptor names a new pipe",
              arguments: BackendKind.availableHere)
        func wakeAfterClose(backend kind: BackendKind) throws {
            var reused = 0
            for _ in 0..<20 {
                let backend = try kind.makeBackend()
                let numbers = backend.descriptors
                backend.close()
                var ends: [CInt] = [-1, -1]
                try #require(pipe(&ends) == 0)
                defer {
                    close(ends[0])
                    close(ends[1])
                }
                guard numbers.contains(ends[1]) else { continue }
                reused += 1
                backend.wake()
                var entry = pollfd(fd: ends[0], events: Int16(POLLIN), revents: 0)
                #expect(poll(&entry, 1, 0) == 0, "the wake-up wrote into the pipe")
            }
            // Each pipe takes the lowest free numbers, those the backend just gave up,
            // unless a test beside this one opened a descriptor in between every time.
            #expect(reused > 0)
        }

        // Other threads do not block SIGPIPE: were the pipe's reader closed while its
        // writer still took wake-ups, a wake-up in between would kill the process.
        @Test("waking from another thread while the backend closes neither fails nor raises SIGPIPE",
              arguments: BackendKind.availableHere)
        func wakeDuringClose(backend kind: BackendKind) async throws {
            // Spinning on threads of their own holds up none of Swift's cooperative pool.
            try await onThreadOfItsOwn {
                for _ in 0..<100 {
                    let backend = try kind.makeBackend()
                    let closed = Counter()
                    let wakeUps = Counter()
                    let wakerEnded = Counter()
                    let started = startDetachedThread {
                        while closed.value == 0, wakeUps.value < 10_000 {
                            backend.wake()
                            wakeUps.increment()
                        }
                        wakerEnded.increment()
                    }
                    guard started == 0 else {
                        backend.close()
                        throw Errno(rawValue: started)
                    }
                    while wakeUps.value == 0 { sched_yield() }
                    backend.close()
                    closed.increment()
                    while wakerEnded.value == 0 { sched_yield() }
                }
            }
        }
    }
}

/// Runs `body` on a thread outside Swift's cooperative pool, where it may block and spin.
private func onThreadOfItsOwn<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
    try await withCheckedThrowingContinuation { continuation in
        let started = startDetachedThread { continuation.resume(with: Result(catching: body)) }
        if started != 0 { continuation.resume(throwing: Errno(rawValue: started)) }
    }
}
