import Testing

@testable import Reactor

extension ReactorTests {
    @Suite struct WaiterTests {
        /// Expects a new task to park on `waiter` and return once notified: the slot is free.
        private func expectFreeSlot(_ waiter: Waiter, on loop: EventLoop) async throws {
            let next = Task(executorPreference: loop) { try await waiter.park() }
            try await waitUntil { waiter.isWaiting }
            loop.execute { waiter.notify() }
            try await next.value
        }

        @Test(
            "a resumed park holds its slot until its task runs: another park is refused, and a cancellation meant for it reaches nobody else",
            arguments: BackendKind.availableHere)
        func resumedParkHoldsSlot(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let waiter = Waiter()
                let first = Task(executorPreference: loop) { try await waiter.park() }
                try await waitUntil { waiter.isWaiting }
                try await onLoop(loop) {
                    // Resumed, but its job waits behind this one on the same thread.
                    waiter.notify()
                    // A cancellation of the first task that comes late, behind its resume.
                    loop.execute { waiter.cancelPark() }
                    await #expect(throws: ReactorError.busy) { try await waiter.park() }
                }
                try await first.value
                // Once the first task ran, the slot is free again.
                try await expectFreeSlot(waiter, on: loop)
            }
        }

        @Test("cancelling a parked task resumes it with CancellationError and frees the slot", arguments: BackendKind.availableHere)
        func cancelFreesSlot(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let waiter = Waiter()
                let parked = Task(executorPreference: loop) { try await waiter.park() }
                try await waitUntil { waiter.isWaiting }
                parked.cancel()
                await #expect(throws: CancellationError.self) { try await parked.value }
                try await expectFreeSlot(waiter, on: loop)
            }
        }

        @Test("a task cancelled before it parks does not sleep", arguments: BackendKind.availableHere)
        func cancelledBeforePark(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let waiter = Waiter()
                let parked = Task(executorPreference: loop) {
                    withUnsafeCurrentTask { $0?.cancel() }
                    try await waiter.park()
                }
                await #expect(throws: CancellationError.self) { try await parked.value }
                #expect(!waiter.isWaiting)
            }
        }
    }
}
