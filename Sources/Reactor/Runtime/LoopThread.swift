import CReactor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The OS thread behind an event loop.
struct LoopThread: ~Copyable {
    private let handle: pthread_t

    /// Starts a thread named `name` that runs `loop.runUntilStopped()`.
    init(name: String, loop: EventLoop) throws(IOError) {
        let context = Unmanaged.passRetained(LoopThreadContext(name: name, loop: loop)).toOpaque()
        #if os(Linux)
        var handle = pthread_t()
        #else
        var handle: pthread_t?
        #endif
        let result = pthread_create(&handle, nil, { raw in
            let context = Unmanaged<LoopThreadContext>.fromOpaque(raw!).takeRetainedValue()
            context.run()
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<LoopThreadContext>.fromOpaque(context).release()
            throw IOError(.create, .init(rawValue: result))
        }
        #if os(Linux)
        self.handle = handle
        #else
        self.handle = handle!
        #endif
    }

    /// Waits for the thread to end.
    consuming func join() {
        pthread_join(handle, nil)
    }

    /// Whether the calling thread is this one.
    var isCurrent: Bool { pthread_equal(handle, pthread_self()) != 0 }
}

private final class LoopThreadContext {
    let name: String
    let loop: EventLoop

    init(name: String, loop: EventLoop) {
        self.name = name
        self.loop = loop
    }

    func run() {
        #if os(Linux)
        creactor_set_thread_name(String(name.prefix(15)))
        #endif
        // A write to a closed pipe on a loop thread fails with EPIPE instead of killing
        // the process; the per-thread mask is not process-wide state.
        #if os(Linux)
        _ = creactor_block_sigpipe()
        #endif
        creactor_set_current_loop(Unmanaged.passUnretained(loop).toOpaque())
        loop.runUntilStopped()
        creactor_set_current_loop(nil)
    }
}
