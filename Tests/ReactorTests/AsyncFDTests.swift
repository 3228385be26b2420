import Glibc
import Synchronization
import SystemPackage
import Testing

@testable import Reactor

extension ReactorTests {
    @Suite struct AsyncFDTests {
        @Test("cancelling a pending readable() resumes it with CancellationError and frees the waiter", arguments: BackendKind.availableHere)
        func cancelReadable(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let pipe = try Pipe(on: loop)
                let waiting = Task(executorPreference: loop) { try await pipe.reader.source.readable() }
                try await waitUntil { pipe.reader.source.io.isAwaitingRead }
                waiting.cancel()
                await #expect(throws: CancellationError.self) { try await waiting.value }
                #expect(!pipe.reader.source.io.isAwaitingRead)
                try await onLoop(loop) { try await pipe.writer.write([3]) }
                let event = try await onLoop(loop) { try await pipe.reader.source.readable() }
                #expect(event.interest == .readable)
                #expect(try await onLoop(loop) { try await pipe.reader.read(upTo: 4) } == [3])
                try pipe.reader.close()
                try pipe.writer.close()
            }
        }

        @Test("cancelling a pending read resumes it with CancellationError, from any thread", arguments: BackendKind.availableHere)
        func cancelRead(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let pipe = try Pipe(on: loop)
                for round in 0..<20 {
                    let reading = Task(executorPreference: loop) { try await pipe.reader.read(upTo: 4) }
                    if round % 2 == 0 { try await waitUntil { pipe.reader.source.io.isAwaitingRead } }
                    reading.cancel()
                    await #expect(throws: CancellationError.self) { try await reading.value }
                }
                // Also cancelled from a task on the loop itself.
                let reading = Task(executorPreference: loop) { try await pipe.reader.read(upTo: 4) }
                try await waitUntil { pipe.reader.source.io.isAwaitingRead }
                try await onLoop(loop) { reading.cancel() }
                await #expect(throws: CancellationError.self) { try await reading.value }
                try pipe.reader.close()
                try pipe.writer.close()
            }
        }

        @Test("closing a resource while a task waits on it resumes that task with .closed", arguments: BackendKind.availableHere)
        func closeWhileWaiting(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let pipe = try Pipe(on: loop)
                let reading = Task(executorPreference: loop) { try await pipe.reader.read(upTo: 4) }
                try await waitUntil { pipe.reader.source.io.isAwaitingRead }
                try pipe.reader.close()
                await #expect(throws: ReactorError.closed) { try await reading.value }
                await #expect(throws: ReactorError.closed) { try await pipe.reader.read(upTo: 4) }
                try pipe.reader.close()
                try pipe.writer.close()
            }
        }

        @Test("a second task waiting on the same direction gets .busy", arguments: BackendKind.availableHere)
        func oneWaiterPerDirection(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let pipe = try Pipe(on: loop)
                let first = Task(executorPreference: loop) { try await pipe.reader.read(upTo: 4) }
                try await waitUntil { pipe.reader.source.io.isAwaitingRead }
                await #expect(throws: ReactorError.busy) {
                    try await onLoop(loop) { try await pipe.reader.read(upTo: 4) }
                }
                try await onLoop(loop) { try await pipe.writer.write([8]) }
                #expect(try await first.value == [8])
                try pipe.reader.close()
                try pipe.writer.close()
            }
        }

        @Test("a stale token's event does not wake the new owner of the reused slot", arguments: BackendKind.availableHere)
        func staleTokenEvent(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let old = try Pipe(on: loop)
                let oldToken = old.reader.source.io.token
                // Freed last, the reader's slot is the first to be reused.
                try old.writer.close()
                try old.reader.close()
                let new = try Pipe(on: loop)
                let newToken = new.reader.source.io.token
                #expect(newToken.index == oldToken.index)
                #expect(newToken.generation != oldToken.generation)

                let woken = Counter()
                let waiting = Task(executorPreference: loop) {
                    _ = try await new.reader.source.readable()
                    woken.increment()
                }
                try await waitUntil { new.reader.source.io.isAwaitingRead }
                try await onLoop(loop) {
                    loop.reactor.dispatch([BackendEvent(token: oldToken, readiness: [.readable, .readClosed])])
                }
                // A woken task would have been queued before this job, which runs after it.
                try await onLoop(loop) {}
                #expect(woken.value == 0)
                #expect(new.reader.source.io.isAwaitingRead)

                try await onLoop(loop) {
                    loop.reactor.dispatch([BackendEvent(token: newToken, readiness: [.readable])])
                }
                try await waiting.value
                #expect(woken.value == 1)
                try new.reader.close()
                try new.writer.close()
            }
        }

        @Test("a hang-up reaches both the reader and the writer of one descriptor", arguments: BackendKind.availableHere)
        func hangUpReachesBothDirections(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let (local, peer) = try makeSocketPair()
                let source = try AsyncFD(FileDescriptor(rawValue: local), on: loop)
                // Fill the send buffer so that the writer has to wait.
                let chunk = [UInt8](repeating: 7, count: 65_536)
                while chunk.withUnsafeBytes({ send(local, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL)) }) > 0 {}
                let reader = Task(executorPreference: loop) {
                    var byte: UInt8 = 0
                    return try await source.whenReadable { (fd) throws(Errno) in
                        try valueOrErrno { Glibc.read(fd.rawValue, &byte, 1) }
                    }
                }
                let writer = Task(executorPreference: loop) {
                    try await source.whenWritable { (fd) throws(Errno) in
                        try valueOrErrno { chunk.withUnsafeBytes { send(fd.rawValue, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL)) } }
                    }
                }
                try await waitUntil { source.io.isAwaitingRead && source.io.isAwaitingWrite }
                close(peer)
                // The peer closed with our bytes unread, so the reader sees a reset
                // rather than end-of-file; either way it was woken.
                switch await reader.result {
                case .success(let count): #expect(count == 0)
                case .failure(let error): #expect((error as? IOError)?.errno == .connectionReset)
                }
                let error = await #expect(throws: IOError.self) { try await writer.value }
                #expect(error?.errno == .brokenPipe || error?.errno == .connectionReset)
                let event = try await onLoop(loop) { try await source.readable() }
                #expect(event.isReadClosed)
                try source.close()
            }
        }

        @Test("a peer's half-close does not strand a writer waiting on the same descriptor", arguments: BackendKind.availableHere)
        func halfCloseKeepsWriterArmed(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let (local, peer) = try makeSocketPair()
                let source = try AsyncFD(FileDescriptor(rawValue: local), on: loop)
                let chunk = [UInt8](repeating: 7, count: 65_536)
                // Fill the send buffer to the last byte, so that even a one-byte write waits.
                for size in [chunk.count, 1] {
                    while chunk.withUnsafeBytes({ send(local, $0.baseAddress, size, CInt(MSG_NOSIGNAL)) }) > 0 {}
                }
                let finished = Counter()
                let writer = Task(executorPreference: loop) {
                    defer { finished.increment() }
                    return try await withTimeout(.seconds(60)) {
                        try await source.whenWritable { (fd) throws(Errno) in
                            try valueOrErrno { chunk.withUnsafeBytes { send(fd.rawValue, $0.baseAddress, 1, CInt(MSG_NOSIGNAL)) } }
                        }
                    }
                }
                try await waitUntil { source.io.isAwaitingWrite || finished.value > 0 }
                if finished.value > 0 {
                    let result = await writer.result
                    Issue.record("the writer did not wait: \(result)")
                    close(peer)
                    try source.close()
                    return
                }
                // The peer stops writing (a half-close our side may see as RDHUP). A job on the
                // loop wakes it for one more wait, which reports whatever it polls for, and
                // only then does the peer make room.
                Glibc.shutdown(peer, CInt(SHUT_WR))
                try await onLoop(loop) {}
                var sink = [UInt8](repeating: 0, count: 65_536)
                while recv(peer, &sink, sink.count, CInt(MSG_DONTWAIT)) > 0 {}
                #expect(try await writer.value == 1)
                close(peer)
                try source.close()
            }
        }

        @Test("closing from another thread while the loop sleeps releases the socket at once", arguments: BackendKind.availableHere)
        func closeWhileLoopSleeps(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let (local, peer) = try makeSocketPair()
                let source = try AsyncFD(FileDescriptor(rawValue: local), on: loop)
                // A read that parks and is cancelled leaves the descriptor armed in the backend.
                let reader = Task(executorPreference: loop) { _ = try await source.readable() }
                try await waitUntil { source.io.isAwaitingRead }
                reader.cancel()
                _ = await reader.result
                // The peer waits on a default-group loop, not the one under test.
                let peerSource = try AsyncFD(FileDescriptor(rawValue: peer))
                let peerSeesEnd = Task {
                    try await withTimeout(.seconds(60)) { try await peerSource.readable().isReadClosed }
                }
                // The loop is asleep now; close from this thread, which is not the loop's.
                try source.close()
                // The peer sees end-of-file within 10 s, not whenever the loop next wakes.
                #expect(try await peerSeesEnd.value)
                try peerSource.close()
            }
        }

        @Test("epoll refuses a regular file: a typed error, and the descriptor stays open")
        func regularFile() async throws {
            try await withLoop(.epoll) { loop in
                let fd = try FileDescriptor.open("/proc/self/status", .readOnly, options: [.closeOnExec])
                let error = #expect(throws: IOError.self) { _ = try AsyncFD(fd, on: loop) }
                #expect(error?.operation == .register)
                #expect(error?.errno == .notPermitted)
                try fd.close()
            }
        }

        @Test("whenReadable reports other errors as IOError with the operation and errno", arguments: BackendKind.availableHere)
        func operationErrors(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let pipe = try Pipe(on: loop)
                try await onLoop(loop) { try await pipe.writer.write([1]) }
                let error = await #expect(throws: IOError.self) {
                    try await onLoop(loop) {
                        try await pipe.reader.source.whenReadable { _ throws(Errno) in throw Errno.ioError }
                    }
                }
                #expect(error?.operation == .read)
                #expect(error?.errno == .ioError)
                try pipe.reader.close()
                try pipe.writer.close()
            }
        }
    }
}
