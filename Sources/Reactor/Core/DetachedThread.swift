#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts a detached OS thread that runs `body`, outside Swift's cooperative pool.
/// Returns `pthread_create`'s result: 0 once the thread runs, an errno otherwise.
func startDetachedThread(_ body: @escaping @Sendable () -> Void) -> CInt {
    final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }
    let context = Unmanaged.passRetained(Body(body)).toOpaque()
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setdetachstate(&attributes, CInt(PTHREAD_CREATE_DETACHED))
    #if os(Linux)
    var handle = pthread_t()
    #else
    var handle: pthread_t?
    #endif
    let result = pthread_create(&handle, &attributes, { raw in
        Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue().run()
        return nil
    }, context)
    if result != 0 { Unmanaged<Body>.fromOpaque(context).release() }
    return result
}
