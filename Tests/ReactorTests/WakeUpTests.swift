import Glibc
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
    }
}
