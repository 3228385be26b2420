import Testing

@testable import Reactor

extension ReactorTests {
    @Suite struct ScheduledIOTests {
        private func makeIO(_ readiness: Readiness = []) -> ScheduledIO {
            ScheduledIO(descriptor: -1, token: Token(index: 0, generation: 0), readiness: readiness)
        }

        @Test("an event that arrives after an operation looked is not erased by its EAGAIN")
        func eventRacingEAGAIN() {
            let io = makeIO()
            io.deliver(.readable, tick: 1)
            let snapshot = io.beginOperation()
            #expect(snapshot.readiness.contains(.readable))
            // The read finds nothing (EAGAIN), but before it clears, a new event lands.
            io.deliver(.readable, tick: 2)
            io.clear(.readable, ifUnchangedSince: snapshot)
            #expect(io.endOperation() == false)
            #expect(io.snapshot().readiness.contains(.readable), "the newer event survives")
            // Without a newer event, the clear takes effect.
            let next = io.beginOperation()
            io.clear(.readable, ifUnchangedSince: next)
            #expect(io.endOperation() == false)
            #expect(!io.snapshot().readiness.contains(.readable))
        }

        @Test("hang-up and error bits are sticky and wake both directions")
        func stickyBits() async throws {
            let io = makeIO()
            io.deliver([.readClosed, .writeClosed, .error], tick: 1)
            let snapshot = io.beginOperation()
            io.clear([.readable, .writable, .readClosed, .writeClosed, .error], ifUnchangedSince: snapshot)
            _ = io.endOperation()
            #expect(io.snapshot().readiness.isSuperset(of: Readiness.sticky))
            // Both waiters hold a notification: parking returns at once.
            try await io.reader.park(arm: {}, disarm: {})
            try await io.writer.park(arm: {}, disarm: {})
        }

        @Test("closing while an operation is in flight leaves the descriptor to that operation")
        func deferredRelease() {
            let io = makeIO()
            _ = io.beginOperation()
            #expect(io.close() == false, "an operation is inside a syscall: not yet")
            #expect(io.snapshot().isClosed)
            #expect(io.endOperation() == true, "the last operation out releases it")
            #expect(io.close() == false, "released exactly once")
            _ = io.beginOperation()
            #expect(io.endOperation() == false)
        }

        @Test("closing with nothing in flight releases at once, exactly once")
        func immediateRelease() {
            let io = makeIO()
            #expect(io.close() == true)
            #expect(io.close() == false)
        }

        @Test("shutdown stops operations but leaves the descriptor to its owner")
        func shutdownKeepsDescriptor() {
            let io = makeIO()
            #expect(io.close(shutDown: true) == false)
            #expect(io.snapshot().isShutDown)
            #expect(!io.snapshot().isClosed)
            #expect(io.close() == true, "the owner's close still releases it")
        }
    }
}
