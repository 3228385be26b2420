#if os(Linux)
import CReactor
import Glibc

/// Runs a write so that writing to a pipe whose reader is gone fails with `EPIPE`
/// instead of raising `SIGPIPE` (DESIGN §3.5).
///
/// Loop threads block `SIGPIPE` for their whole life. Any other thread blocks it only
/// around the write. Either way a signal the write left pending is taken before
/// returning, so it is never delivered later.
func withBrokenPipeSignalBlocked<Result>(_ write: () -> Result) -> Result {
    // Only whether this is a loop thread matters; no reference to the loop is taken.
    let onLoop = creactor_get_current_loop() != nil
    let wasBlocked = onLoop || creactor_block_sigpipe() != 0
    let result = write()
    if errno == EPIPE { creactor_consume_sigpipe() }
    if !wasBlocked { creactor_unblock_sigpipe() }
    return result
}
#endif
