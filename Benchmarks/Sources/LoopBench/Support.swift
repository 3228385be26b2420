// Clocks, CPU pinning, arguments and output for the loop workloads.
import CAffinity

#if canImport(Glibc)
import Glibc
#endif

/// The time `clock` shows, in seconds.
@inlinable
func seconds(on clock: clockid_t) -> Double {
    var time = timespec()
    clock_gettime(clock, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

@inlinable
public func monotonicSeconds() -> Double { seconds(on: CLOCK_MONOTONIC) }

public func monotonicNanoseconds() -> Int {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return time.tv_sec * 1_000_000_000 + time.tv_nsec
}

/// CPU seconds the calling thread has used.
public func threadCPUSeconds() -> Double { seconds(on: CLOCK_THREAD_CPUTIME_ID) }

/// CPU seconds the whole process has used, every thread's.
public func processCPUSeconds() -> Double { seconds(on: CLOCK_PROCESS_CPUTIME_ID) }

/// Pins the calling thread to `cpu`.
public func pinCurrentThread(to cpu: Int) {
    if affinity_pin_current_thread(CInt(cpu)) != 0 {
        fail("cannot pin a thread to CPU \(cpu): \(String(cString: strerror(errno)))")
    }
}

/// One result line on standard output, flushed at once.
public func emit(_ line: String) {
    print(line)
    fflush(nil)
}

public func fail(_ message: String) -> Never {
    let line = "error: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(1)
}

/// `value` with `places` decimals, without Foundation's `String(format:)`.
func fixed(_ value: Double, _ places: Int) -> String {
    let scale = (0..<places).reduce(1) { product, _ in product * 10 }
    let scaled = Int((value * Double(scale)).rounded())
    guard places > 0 else { return "\(scaled)" }
    let fraction = "\(abs(scaled) % scale)"
    return "\(scaled / scale).\(String(repeating: "0", count: places - fraction.count))\(fraction)"
}

/// The command line shared by every loop program:
///
///     PROGRAM timers [--pending N] [--seconds S] [--loop-cpu C] [--producer-cpu C]
///     PROGRAM wakeup [--samples N] [--jobs N] [--loop-cpu C] [--producer-cpu C]
///     PROGRAM tasks [--resumes N] [--loop-cpu C] [--producer-cpu C]
///
/// plus the options the program itself takes (`extra`, each with a value), in any order.
public struct LoopArguments {
    public enum Workload: String { case timers, wakeup, tasks }

    public var workload: Workload
    public var pending = 100_000
    public var seconds = 1.0
    public var samples = 2_000
    public var jobs = 1_000_000
    public var resumes = 1_000_000
    public var loopCPU = 1
    public var producerCPU = 0
    public var extra: [String: String] = [:]

    public init(_ arguments: [String], program: String, extra names: [String] = []) {
        let usage = "usage: \(program) timers|wakeup|tasks [--pending N] [--seconds S] [--samples N] [--jobs N] "
            + "[--resumes N] [--loop-cpu C] [--producer-cpu C]" + names.map { " [\($0) VALUE]" }.joined()
        var workload: Workload?
        var rest = arguments.makeIterator()
        while let name = rest.next() {
            if let named = Workload(rawValue: name) {
                workload = named
                continue
            }
            guard let value = rest.next() else { fail(usage) }
            if names.contains(name) {
                extra[name] = value
                continue
            }
            // CPUs count from 0; every other number must be positive.
            guard let number = Double(value), number > 0 || (name.hasSuffix("-cpu") && number == 0) else { fail(usage) }
            switch name {
            case "--pending": pending = Int(number)
            case "--seconds": seconds = number
            case "--samples": samples = Int(number)
            case "--jobs": jobs = Int(number)
            case "--resumes": resumes = Int(number)
            case "--loop-cpu": loopCPU = Int(number)
            case "--producer-cpu": producerCPU = Int(number)
            default: fail(usage)
            }
        }
        guard let workload else { fail(usage) }
        self.workload = workload
    }

    /// Pins the loop and the calling thread, then runs the workload.
    public func run<Loop: LoopUnderTest>(on loop: Loop) {
        pinLoop(loop, to: loopCPU)
        pinCurrentThread(to: producerCPU)
        switch workload {
        case .timers: timerWorkload(loop, pending: pending, seconds: seconds)
        case .wakeup: wakeUpWorkload(loop, samples: samples, jobs: jobs)
        case .tasks: taskResumeWorkload(loop, resumes: resumes)
        }
    }
}
