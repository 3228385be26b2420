#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// Runs `call` until it stops failing with `EINTR` (unless `retryOnInterrupt` is false),
/// and turns a `-1` result into the `Errno` the call left behind.
@inline(__always)
func valueOrErrno<Result: FixedWidthInteger>(
    retryOnInterrupt: Bool = true,
    _ call: () -> Result
) throws(Errno) -> Result {
    while true {
        let result = call()
        if result != -1 { return result }
        let error = Errno(rawValue: errno)
        guard retryOnInterrupt, error == .interrupted else { throw error }
    }
}

/// Closes a descriptor the reactor created for itself. `EINTR` is not retried: on Linux
/// the descriptor is released even then, and its number may already be reused.
func closeDescriptor(_ fd: CInt) {
    _ = close(fd)
}
