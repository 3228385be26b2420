import CReactor
import Glibc
import SystemPackage
import Testing

@testable import Reactor

extension ReactorTests {
    @Suite struct SyscallTests {
        @Test("EINTR is retried; other errors are thrown; retrying can be turned off")
        func interruptedCallsRetry() throws {
            var calls = 0
            let result = try valueOrErrno { () -> CInt in
                calls += 1
                if calls < 3 {
                    errno = EINTR
                    return -1
                }
                return 7
            }
            #expect(result == 7)
            #expect(calls == 3)
            #expect(throws: Errno.interrupted) {
                try valueOrErrno(retryOnInterrupt: false) { () -> CInt in
                    errno = EINTR
                    return -1
                }
            }
            #expect(throws: Errno.badFileDescriptor) {
                try valueOrErrno { () -> CInt in
                    errno = EBADF
                    return -1
                }
            }
        }

        @Test("pipe ends are close-on-exec and non-blocking from birth", arguments: BackendKind.availableHere)
        func pipeFlags(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let pipe = try Pipe(on: loop)
                for fd in [pipe.reader.source.fileDescriptor.rawValue, pipe.writer.sink.fileDescriptor.rawValue] {
                    #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
                    #expect(fcntl(fd, F_GETFL) & O_NONBLOCK != 0)
                }
                try pipe.reader.close()
                try pipe.writer.close()
            }
        }

        @Test("a loop's own descriptors are close-on-exec", arguments: BackendKind.availableHere)
        func loopDescriptorsAreCloseOnExec(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let owned = loop.reactor.backend.descriptors
                #expect(owned.count == 2)
                for fd in owned { #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0, "descriptor \(fd)") }
            }
        }

        @Test("durations become poll timeouts rounded up to the millisecond")
        func timeoutRounding() {
            #expect(Duration.milliseconds(roundingUp: nil) == -1)
            #expect(Duration.milliseconds(roundingUp: .zero) == 0)
            #expect(Duration.milliseconds(roundingUp: .nanoseconds(1)) == 1)
            #expect(Duration.milliseconds(roundingUp: .milliseconds(3)) == 3)
            #expect(Duration.milliseconds(roundingUp: .microseconds(3_001)) == 4)
            #expect(Duration.milliseconds(roundingUp: .seconds(-1)) == 0)
        }
    }
}
