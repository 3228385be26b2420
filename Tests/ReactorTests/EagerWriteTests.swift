import CReactor
import Glibc
import Testing

@testable import Reactor

extension ReactorTests {
    @Suite(.enabled(if: uringRuns, "the kernel refuses io_uring here"), .timeLimit(.minutes(1)))
    struct EagerWriteTests {
        /// The loop's io_uring backend, read on the loop's thread.
        private static func inlineCompletions(on loop: EventLoop) async throws -> Int {
            try await onLoop(loop) { (loop.reactor.completions as? URingBackend)?.inlineCompletions ?? -1 }
        }

        @Test("a stream write on a loop with nothing else to run is written at once, without a submission")
        func streamWriteIsDirect() async throws {
            try await withLoop(.uring) { loop in
                let pipe = try Pipe(on: loop)
                let before = try await uringSubmissions(of: CREACTOR_IORING_OP_WRITE, on: loop)
                try await onLoop(loop) {
                    for index in 0..<50 { try await pipe.writer.write([UInt8(index)]) }
                }
                #expect(try await uringSubmissions(of: CREACTOR_IORING_OP_WRITE, on: loop) == before)
                let received = try await onLoop(loop) { try await pipe.reader.read(upTo: 64) }
                #expect(received == (0..<50).map { UInt8($0) })
                try pipe.reader.close()
                try pipe.writer.close()
            }
        }

        @Test("a datagram sent on a loop with nothing else to run completes inside its submission")
        func datagramCompletesInline() async throws {
            try await withLoop(.uring) { loop in
                let sender = try UDPSocket.bind(to: .ipv4(127, 0, 0, 1, port: 0), on: loop)
                let receiver = try UDPSocket.bind(to: .ipv4(127, 0, 0, 1, port: 0), on: loop)
                let destination = try receiver.localAddress
                let before = try await Self.inlineCompletions(on: loop)
                try await onLoop(loop) {
                    for index in 0..<20 { try await sender.send([UInt8(index)], to: destination) }
                }
                #expect(try await Self.inlineCompletions(on: loop) - before == 20)
                let received = try await onLoop(loop) {
                    var bytes: [UInt8] = []
                    for _ in 0..<20 { bytes += try await receiver.receive(upTo: 8).bytes }
                    return bytes
                }
                #expect(received == (0..<20).map { UInt8($0) })
                try sender.close()
                try receiver.close()
            }
        }

        @Test("a datagram sent while the kernel holds completions for the loop goes with the loop's wait, which returns at once")
        func datagramJoinsArrivedCompletions() async throws {
            try await withLoop(.uring) { loop in
                let pipe = try Pipe(on: loop)
                let sender = try UDPSocket.bind(to: .ipv4(127, 0, 0, 1, port: 0), on: loop)
                let receiver = try UDPSocket.bind(to: .ipv4(127, 0, 0, 1, port: 0), on: loop)
                let destination = try receiver.localAddress
                let read = Task(executorPreference: loop) { try await pipe.reader.read(upTo: 16) }
                try await waitUntil { pipe.reader.source.io.isAwaitingRead }
                let before = try await Self.inlineCompletions(on: loop)
                try await onLoop(loop) {
                    // The pipe's byte completes the parked read while this job runs: the
                    // kernel holds that completion until the loop's next wait.
                    var byte: UInt8 = 9
                    #expect(Glibc.write(pipe.writer.sink.fileDescriptor.rawValue, &byte, 1) == 1)
                    try await sender.send([1], to: destination)
                }
                #expect(try await Self.inlineCompletions(on: loop) == before)
                #expect(try await read.value == [9])
                #expect(try await onLoop(loop) { try await receiver.receive(upTo: 8).bytes } == [1])
                try sender.close()
                try receiver.close()
                try pipe.reader.close()
                try pipe.writer.close()
            }
        }

        @Test("a write that cannot complete at once waits for the loop, and loses nothing")
        func blockedWriteWaits() async throws {
            try await withLoop(.uring) { loop in
                let pipe = try Pipe(on: loop)
                let bytes = patternBytes(1 << 20)
                // A pipe holds 64 KiB: the kernel finds it full for most of the write, which
                // then waits for the reader's turn instead of completing inline.
                let writing = Task(executorPreference: loop) { try await pipe.writer.write(bytes) }
                var received: [UInt8] = []
                while received.count < bytes.count {
                    received += try await onLoop(loop) { try await pipe.reader.read(upTo: 64 * 1024) }
                }
                try await writing.value
                #expect(sameBytes(received, bytes))
                try pipe.reader.close()
                try pipe.writer.close()
            }
        }
    }
}
