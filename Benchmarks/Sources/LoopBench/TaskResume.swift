// The task workload: what it costs to suspend a task on the loop and resume it there, the step
// every awaited I/O event of a connection's task takes. Its result line:
//
//   task_resume resumes=... ns_per_resume=... resumes_per_sec=...
import Dispatch

/// Two tasks on the loop hand a baton back and forth `resumes / 2` times each: each hand-over
/// resumes the other task, which the loop had suspended, and suspends the one that hands over.
/// Reports the process's CPU time per resume (every thread's, so a hop through another
/// executor counts) and resumes per second of wall time.
public func taskResumeWorkload<Loop: LoopUnderTest>(_ loop: Loop, resumes: Int) {
    let first = Baton(), second = Baton()
    let finished = DispatchSemaphore(value: 0)
    let passes = max(resumes / 2, 1)
    let cpuStart = processCPUSeconds()
    let wallStart = monotonicSeconds()
    // Whichever task runs first parks with nothing to resume; the other's first hand-over resumes it.
    for (mine, other) in [(second, first), (first, second)] {
        loop.startTask { _ in
            for _ in 0..<passes { await handOver(parkingIn: mine, resuming: other) }
            // The task that ends first leaves the other parked in its last hand-over.
            other.takeParked()?.resume()
            finished.signal()
        }
    }
    finished.wait()
    finished.wait()
    let cpu = processCPUSeconds() - cpuStart
    let wall = monotonicSeconds() - wallStart
    let resumed = 2 * passes
    emit("task_resume resumes=\(resumed) ns_per_resume=\(fixed(cpu * 1e9 / Double(resumed), 1)) "
        + "resumes_per_sec=\(fixed(Double(resumed) / wall, 0))")
}

/// Suspends the calling task in `mine`, after resuming the task parked in `other`, if any.
/// Runs in its caller's isolation, so the resumption comes back to the loop the way an I/O
/// event's does: through the continuation, then the task's executor. The continuation is
/// taken the way Reactor's waits take theirs, without a switch to the isolation on entry.
nonisolated(nonsending) func handOver(parkingIn mine: Baton, resuming other: Baton) async {
    await _unsafeInheritExecutor_withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
        mine.parked = continuation
        other.takeParked()?.resume()
    }
}

/// Where one task waits for the baton. Touched only in the tasks' bodies, which run one at a
/// time on the loop's thread.
final class Baton: @unchecked Sendable {
    var parked: UnsafeContinuation<Void, Never>?

    func takeParked() -> UnsafeContinuation<Void, Never>? {
        defer { parked = nil }
        return parked
    }
}
