import Testing

@testable import Reactor

extension ReactorTests {
    @Suite struct TimeoutTests {
        @Test("an operation past its timeout is cancelled and TimeoutError is thrown", arguments: BackendKind.availableHere)
        func timesOut(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let pipe = try Pipe(on: loop)
                let outcome = await Task(executorPreference: loop) {
                    try await withTimeout(.milliseconds(5)) { try await pipe.reader.read(upTo: 8) }
                }.result
                #expect(throws: TimeoutError.self) { try outcome.get() }
                // The cancelled read freed its waiter: a new read works.
                try await onLoop(loop) { try await pipe.writer.write([1, 2]) }
                let bytes = try await onLoop(loop) { try await pipe.reader.read(upTo: 8) }
                #expect(bytes == [1, 2])
                try pipe.reader.close()
                try pipe.writer.close()
            }
        }

        @Test("an operation within its timeout returns its value", arguments: BackendKind.availableHere)
        func finishesInTime(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let value = try await onLoop(loop) {
                    try await withTimeout(.seconds(60)) { 42 }
                }
                #expect(value == 42)
                let thrown = await Task(executorPreference: loop) {
                    try await withTimeout(.seconds(60)) { throw ReactorError.busy }
                }.result
                #expect(throws: ReactorError.busy) { try thrown.get() }
            }
        }
    }
}
