#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Reactor
import Synchronization

/// The write end of the pipe the signal handler reports on; -1 while no watcher is
/// installed. Set before the handler is installed and after it is removed: the handler
/// only reads it. Atomic, because nothing else orders the handler's read before the
/// store that clears it: the pipe's bytes may reach their reader through the kernel
/// alone (io_uring), which no user-space synchronisation sees.
private let signalPipeWriteEnd = Atomic<CInt>(-1)

/// Turns termination signals into something a task can await: a process-wide handler
/// writes each signal's number to a pipe that an event loop watches (the self-pipe trick).
///
/// Not `sigwait` nor a `signalfd`: both need the signals blocked in every thread, and the
/// Swift runtime has started threads of its own before a command runs; one of them that
/// left the signal unblocked would take it, and the process would die of the default
/// action. A handler belongs to the process, whichever thread runs it. It does one thing,
/// which is async-signal-safe: a `write(2)` to a non-blocking pipe. Should the pipe ever
/// be full, the signals already in it say enough.
///
/// One watcher at a time, by the nature of signal handlers.
final class SignalWatcher {
    private let pipe: Pipe
    private let signals: [CInt]

    /// Installs the handler for `signals`, whose numbers are then read on `loop`.
    ///
    /// - Throws: ``IOError`` if the pipe cannot be created or registered.
    init(_ signals: [CInt], on loop: EventLoop) throws {
        precondition(signalPipeWriteEnd.load(ordering: .relaxed) == -1, "one signal watcher at a time")
        pipe = try Pipe(on: loop)
        self.signals = signals
        signalPipeWriteEnd.store(pipe.writer.sink.fileDescriptor.rawValue, ordering: .releasing)
        for number in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { received in
                let savedErrno = errno
                var byte = UInt8(truncatingIfNeeded: received)
                _ = write(signalPipeWriteEnd.load(ordering: .acquiring), &byte, 1)
                errno = savedErrno
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            // Fails only for an invalid or uncatchable signal number: a bug here.
            let result = sigaction(number, &action, nil)
            precondition(result == 0, "sigaction(\(number)) failed: \(errno)")
        }
    }

    /// Waits for the next of the signals; returns its number.
    ///
    /// - Throws: ``ReactorError/closed`` once the watcher is closed; `CancellationError`.
    func next() async throws -> CInt {
        let loop = pipe.reader.source.eventLoop
        let reader = pipe.reader
        return try await Task(executorPreference: loop) {
            var byte: [UInt8] = [0]
            guard try await reader.read(into: &byte) == 1 else { throw ReactorError.closed }
            return CInt(byte[0])
        }.value
    }

    /// Gives the signals their default action back: the next one ends the process.
    func restoreDefaultActions() {
        for number in signals { signal(number, SIG_DFL) }
    }

    /// Restores the default actions, then closes the pipe.
    func close() {
        restoreDefaultActions()
        signalPipeWriteEnd.store(-1, ordering: .releasing)
        // Closing releases each descriptor even when it reports an error.
        try? pipe.reader.close()
        try? pipe.writer.close()
    }
}

/// The conventional name of a signal: `SIGINT`, `SIGTERM`, or its number.
func signalName(_ signal: CInt) -> String {
    switch signal {
    case SIGINT: "SIGINT"
    case SIGTERM: "SIGTERM"
    default: "signal \(signal)"
    }
}
