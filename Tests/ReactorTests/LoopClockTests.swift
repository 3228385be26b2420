import Glibc
import Synchronization
import Testing

@testable import Reactor

/// Schedules a callback timer on `loop` for each offset, `every` milliseconds apart, all in
/// one job so that none fires before all are in the wheel, and waits past the last.
/// Returns the offsets in the order their timers fired, and how many fired early.
private func fireTimers(on loop: EventLoop, at offsets: [Int], every milliseconds: Int) async throws -> ([Int], Int) {
    let fired = Recorder<Int>()
    let early = Counter()
    let last = try await onLoop(loop) { () -> LoopClock.Instant in
        let start = loop.clock.now
        for offset in offsets {
            let deadline = start.advanced(by: .milliseconds(offset * milliseconds))
            _ = loop.schedule(at: deadline) {
                if loop.clock.now < deadline { early.increment() }
                fired.append(offset)
            }
        }
        return start.advanced(by: .milliseconds((offsets.max() ?? 0) * milliseconds + 2))
    }
    try await onLoop(loop) { try await loop.clock.sleep(until: last) }
    return (fired.elements, early.value)
}

extension ReactorTests {
    @Suite struct LoopClockTests {
        @Test("timers fire in deadline order and never before their deadline", arguments: BackendKind.availableHere)
        func deadlineOrder(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                // Deadlines 3 ms apart land in distinct ticks; they go in out of order.
                let (fired, early) = try await fireTimers(on: loop, at: [27, 3, 15, 9, 21, 0, 12, 6, 24, 18], every: 3)
                #expect(fired == [0, 3, 6, 9, 12, 15, 18, 21, 24, 27])
                #expect(early == 0)
            }
        }

        @Test("a timer scheduled after the loop ran long without one fires at its deadline", arguments: BackendKind.availableHere)
        func timerAfterTimerlessStretch(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                // A loop with no timer reads no clock for them, so its wheel stands still
                // meanwhile: these deadlines are over 64 ticks past it, where it must
                // cascade them down before they fire. (Not `Task.sleep`, whose timer
                // machinery would open descriptors of its own for the rest of the run.)
                usleep(100_000)
                let (fired, early) = try await fireTimers(on: loop, at: [4, 1, 3, 2], every: 2)
                #expect(fired == [1, 2, 3, 4])
                #expect(early == 0)
            }
        }

        @Test("sleeps never end before their deadline", arguments: BackendKind.availableHere)
        func sleepsNeverEarly(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let early = Counter()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<20 {
                        group.addTask(executorPreference: loop) {
                            let deadline = loop.clock.now.advanced(by: .microseconds(index * 700))
                            try await loop.clock.sleep(until: deadline)
                            if loop.clock.now < deadline { early.increment() }
                        }
                    }
                    try await group.waitForAll()
                }
                #expect(early.value == 0)
            }
        }

        @Test("a sleep from a task that runs on no loop hops to the loop and back", arguments: BackendKind.availableHere)
        func sleepOffLoop(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let deadline = loop.clock.now.advanced(by: .milliseconds(2))
                try await loop.clock.sleep(until: deadline)
                #expect(loop.clock.now >= deadline)
                #expect(EventLoop.current == nil)
            }
        }

        @Test("cancelling a sleep resumes it at once with CancellationError", arguments: BackendKind.availableHere)
        func cancelSleep(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let sleeper = Task(executorPreference: loop) {
                    try await loop.clock.sleep(for: .seconds(3_600))
                }
                // Cancelled from a thread that is not the loop's.
                sleeper.cancel()
                let result = await sleeper.result
                #expect(throws: CancellationError.self) { try result.get() }
                let pending = try await onLoop(loop) { loop.timers.wheel.count }
                #expect(pending == 0, "the cancelled sleep's timer is gone from the wheel")
            }
        }

        @Test("a sleep cancelled while parked is resumed once, and its timer is unlinked", arguments: BackendKind.availableHere)
        func cancelParkedSleep(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                for _ in 0..<50 {
                    let sleeper = Task(executorPreference: loop) {
                        try await loop.clock.sleep(for: .seconds(3_600))
                    }
                    // Wait until the timer exists, then cancel from another thread.
                    while try await onLoop(loop, { loop.timers.wheel.count }) == 0 { await Task.yield() }
                    sleeper.cancel()
                    let result = await sleeper.result
                    #expect(throws: CancellationError.self) { try result.get() }
                }
                let pending = try await onLoop(loop) { loop.timers.wheel.count }
                #expect(pending == 0)
            }
        }

        @Test("cancelled callback timers never run; the others run once, on the loop", arguments: BackendKind.availableHere)
        func callbackTimers(backend: BackendKind) async throws {
            try await withLoop(backend) { loop in
                let ran = Recorder<Int>()
                let offLoop = Counter()
                let last = try await onLoop(loop) { () -> LoopClock.Instant in
                    let now = loop.clock.now
                    var timers: [ScheduledTimer] = []
                    for index in 0..<200 {
                        let timer = loop.schedule(at: now.advanced(by: .milliseconds(index % 20))) {
                            if !loop.isCurrent { offLoop.increment() }
                            ran.append(index)
                        }
                        timers.append(timer)
                    }
                    for (index, timer) in timers.enumerated() where index % 2 == 0 { timer.cancel() }
                    return now.advanced(by: .milliseconds(25))
                }
                try await onLoop(loop) { try await loop.clock.sleep(until: last) }
                // One more turn, so that every timer due before `last` has had its tick.
                try await onLoop(loop) { try await loop.clock.sleep(for: .milliseconds(2)) }
                let fired = ran.elements.sorted()
                #expect(fired == Array(stride(from: 1, to: 200, by: 2)))
                #expect(offLoop.value == 0)
            }
        }

        @Test("instants compare and measure in nanoseconds")
        func instants() {
            let start = LoopClock.Instant(nanoseconds: 1_000)
            let later = start.advanced(by: .microseconds(3))
            #expect(later.nanoseconds == 4_000)
            #expect(start.duration(to: later) == .microseconds(3))
            #expect(start < later)
        }
    }
}
