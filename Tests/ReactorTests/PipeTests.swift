import Glibc
import Synchronization
import SystemPackage
import Testing

@testable import Reactor

/// Bounces a counter `rounds` times between two tasks over two pipes, each task on its
/// own loop; returns the final counter as both sides saw it.
private func pingPong(rounds: Int, pingLoop: EventLoop, pongLoop: EventLoop) async throws -> (UInt32, UInt32) {
    let there = try Pipe(on: pongLoop)
    let back = try Pipe(on: pingLoop)
    let pong = Task(executorPreference: pongLoop) { () -> UInt32 in
        var buffer = [UInt8](repeating: 0, count: 4)
        var last: UInt32 = 0
        while true {
            var received = 0
            while received < 4 {
                let count = try await there.reader.read(into: &buffer)
                if count == 0 { return last }
                received += count
            }
            last = buffer.withUnsafeBytes { $0.load(as: UInt32.self) }
            try await back.writer.write(buffer)
        }
    }
    let ping = Task(executorPreference: pingLoop) { () -> UInt32 in
        var buffer = [UInt8](repeating: 0, count: 4)
        var value: UInt32 = 0
        for round in 1...UInt32(rounds) {
            try await there.writer.write(withUnsafeBytes(of: round) { Array($0) })
            var received = 0
            while received < 4 { received += try await back.reader.read(into: &buffer) }
            value = buffer.withUnsafeBytes { $0.load(as: UInt32.self) }
            if value != round { break }
        }
        try there.writer.close()
        return value
    }
    let result = (try await ping.value, try await pong.value)
    try there.reader.close()
    try back.reader.close()
    try back.writer.close()
    return result
}

extension ReactorTests {
    @Suite struct PipeTests {
        @Test("many tasks ping-pong over pipes on one loop", arguments: BackendKind.availableHere)
        func pingPongOneLoop(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                try await withThrowingTaskGroup(of: (UInt32, UInt32).self) { group in
                    for _ in 0..<32 {
                        group.addTask { try await pingPong(rounds: 300, pingLoop: loop, pongLoop: loop) }
                    }
                    for try await (ping, pong) in group {
                        #expect(ping == 300)
                        #expect(pong == 300)
                    }
                }
            }
        }

        @Test("many tasks ping-pong over pipes across two loops", arguments: BackendKind.availableHere)
        func pingPongAcrossLoops(backend: BackendKind) async throws {
            try await withEventLoopGroup(loopCount: 2, backend: backend) { group in
                try await withThrowingTaskGroup(of: (UInt32, UInt32).self) { tasks in
                    for index in 0..<16 {
                        let ping = group.loops[index % 2]
                        let pong = group.loops[(index + 1) % 2]
                        tasks.addTask { try await pingPong(rounds: 300, pingLoop: ping, pongLoop: pong) }
                    }
                    for try await (ping, pong) in tasks {
                        #expect(ping == 300)
                        #expect(pong == 300)
                    }
                }
            }
        }

        @Test("a pipe works from tasks on no loop, through the default group")
        func defaultGroup() async throws {
            let pipe = try Pipe()
            #expect(try EventLoopGroup.shared.loops.contains { $0 === pipe.reader.source.eventLoop })
            try await pipe.writer.write([5, 6, 7])
            #expect(try await pipe.reader.read(upTo: 3) == [5, 6, 7])
            try pipe.writer.close()
            #expect(try await pipe.reader.read(upTo: 3) == [])
            try pipe.reader.close()
        }

        @Test("a write larger than the pipe's buffer completes while the reader drains it", arguments: BackendKind.availableHere)
        func largeWrite(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let pipe = try Pipe(on: loop)
                let payload = patternBytes(1_000_000)
                let writer = Task(executorPreference: loop) {
                    try await pipe.writer.write(payload[...])
                    try pipe.writer.close()
                }
                let received = try await onLoop(loop) { () -> [UInt8] in
                    var all: [UInt8] = []
                    var buffer = [UInt8](repeating: 0, count: 65_536)
                    while true {
                        let count = try await pipe.reader.read(into: &buffer)
                        if count == 0 { return all }
                        all += buffer[..<count]
                    }
                }
                try await writer.value
                #expect(sameBytes(received, payload))
                try pipe.reader.close()
            }
        }

        @Test("closing the writer wakes a waiting reader with end-of-file", arguments: BackendKind.availableHere)
        func hangUpReachesReader(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let pipe = try Pipe(on: loop)
                let reader = Task(executorPreference: loop) { try await pipe.reader.read(upTo: 16) }
                try await waitUntil { pipe.reader.source.io.isAwaitingRead }
                try pipe.writer.close()
                #expect(try await reader.value == [])
                try pipe.reader.close()
            }
        }

        @Test("closing the reader wakes a writer blocked on a full pipe with EPIPE, and no SIGPIPE", arguments: BackendKind.availableHere)
        func hangUpReachesWriter(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let pipe = try Pipe(on: loop)
                let writer = Task(executorPreference: loop) {
                    try await pipe.writer.write([UInt8](repeating: 1, count: 1 << 20))
                }
                try await waitUntil { pipe.writer.sink.io.isAwaitingWrite }
                try pipe.reader.close()
                let error = await #expect(throws: IOError.self) { try await writer.value }
                #expect(error?.errno == .brokenPipe)
                #expect(error?.operation == .write)
                // Off the loop too: the write fails with EPIPE instead of killing the process.
                let direct = await #expect(throws: IOError.self) { try await pipe.writer.write([1]) }
                #expect(direct?.errno == .brokenPipe)
                try pipe.writer.close()
            }
        }
    }
}
