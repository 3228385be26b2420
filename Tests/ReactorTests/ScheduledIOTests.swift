import Testing

@testable import Reactor

extension ReactorTests {
    @Suite struct ScheduledIOTests {
        private func makeIO(_ readiness: Readiness = []) -> ScheduledIO {
            ScheduledIO(descriptor: -1, token: Token(index: 0, generation: 0), readiness: readiness, reactor: nil)
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
            try await io.reader.park()
            try await io.writer.park()
        }

        @Test("closing while an operation is in flight leaves the descriptor to that operation")
        func deferredRelease() {
            let io = makeIO()
            _ = io.beginOperation()
            io.close()
            #expect(io.snapshot().isClosed)
            #expect(io.deregistered() == false, "an operation is inside a syscall: not yet")
            #expect(io.endOperation() == true, "the last operation out releases it")
            #expect(io.deregistered() == false, "released exactly once")
        }

        @Test("the descriptor is never released before it is deregistered")
        func releaseWaitsForDeregistration() {
            let io = makeIO()
            _ = io.beginOperation()
            io.close()
            #expect(io.endOperation() == false, "still registered: the number must not be reused yet")
            #expect(io.deregistered() == true)
        }

        @Test("closing with nothing in flight releases once deregistered, exactly once")
        func immediateRelease() {
            let io = makeIO()
            io.close()
            #expect(io.deregistered() == true)
            io.close()
            #expect(io.deregistered() == false)
        }

        @Test("shutdown stops operations but leaves the descriptor to its owner")
        func shutdownKeepsDescriptor() {
            let io = makeIO()
            io.close(shutDown: true)
            #expect(io.snapshot().isShutDown)
            #expect(!io.snapshot().isClosed)
            io.close()
            #expect(io.deregistered() == true, "the owner's close still releases it")
        }
    }
}
