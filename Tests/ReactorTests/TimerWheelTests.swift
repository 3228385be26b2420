import Testing

@testable import Reactor

extension ReactorTests {
    @Suite struct TimerWheelTests {
        /// Advances `wheel` one tick at a time up to `end`, recording (tick, payload) fired.
        private func drain(_ wheel: inout TimerWheel<Int>, through end: UInt64) -> [(UInt64, Int)] {
            var fired: [(UInt64, Int)] = []
            var now = wheel.elapsed
            while now <= end {
                while let payload = wheel.nextExpired(at: now) { fired.append((now, payload)) }
                now += 1
            }
            return fired
        }

        @Test("timers fire in deadline order, in their own tick, never early")
        func deadlineOrder() {
            var wheel = TimerWheel<Int>()
            var generator = SystemRandomNumberGenerator()
            let deadlines = (0..<5_000).map { _ in UInt64.random(in: 1...300_000, using: &generator) }
            for (index, deadline) in deadlines.enumerated() { _ = wheel.schedule(at: deadline, index) }
            #expect(wheel.count == deadlines.count)

            var fired: [(UInt64, Int)] = []
            // Jump from expiry to expiry, as the loop does, instead of visiting every tick.
            while let expiry = wheel.nextExpiry {
                while let payload = wheel.nextExpired(at: expiry) { fired.append((expiry, payload)) }
            }
            #expect(fired.count == deadlines.count)
            #expect(wheel.count == 0)
            for (tick, index) in fired { #expect(tick == deadlines[index]) }
            #expect(zip(fired, fired.dropFirst()).allSatisfy { $0.0 <= $1.0 })
        }

        @Test("timers due in the same tick fire in the order they were scheduled")
        func sameTickOrder() {
            var wheel = TimerWheel<Int>()
            for index in 0..<100 { _ = wheel.schedule(at: 4_100, index) }
            let fired = drain(&wheel, through: 4_100)
            #expect(fired.map(\.1) == Array(0..<100))
            #expect(fired.allSatisfy { $0.0 == 4_100 })
        }

        @Test("a cancelled timer never fires, and cancelling twice or after firing does nothing")
        func cancel() {
            var wheel = TimerWheel<Int>()
            let ids = (0..<1_000).map { wheel.schedule(at: UInt64($0 % 200 + 1), $0) }
            for (index, id) in ids.enumerated() where index % 2 == 0 {
                #expect(wheel.cancel(id) == index)
                #expect(wheel.cancel(id) == nil)
            }
            let fired = drain(&wheel, through: 300)
            #expect(fired.map(\.1).sorted() == Array(stride(from: 1, to: 1_000, by: 2)))
            #expect(wheel.cancel(ids[1]) == nil, "cancelling a fired timer is a no-op")
        }

        @Test("a stale ID does not cancel the timer that reuses its entry")
        func staleIdentifier() {
            var wheel = TimerWheel<Int>()
            let first = wheel.schedule(at: 10, 1)
            #expect(wheel.cancel(first) == 1)
            let second = wheel.schedule(at: 10, 2)
            #expect(second.index == first.index)
            #expect(wheel.cancel(first) == nil)
            #expect(drain(&wheel, through: 10).map(\.1) == [2])
        }

        @Test("a deadline already passed fires at the next expiry")
        func pastDeadline() {
            var wheel = TimerWheel<Int>()
            _ = drain(&wheel, through: 500)
            _ = wheel.schedule(at: 3, 7)
            #expect(wheel.nextExpiry == wheel.elapsed)
            #expect(wheel.nextExpired(at: wheel.elapsed) == 7)
        }

        @Test("deadlines beyond the wheel's span fire when due, not before", arguments: [
            UInt64(1) << 36, (UInt64(1) << 36) + 12_345, UInt64(1) << 45,
        ])
        func farDeadline(deadline: UInt64) {
            var wheel = TimerWheel<Int>()
            _ = wheel.schedule(at: deadline, 1)
            var expiries = 0
            while let expiry = wheel.nextExpiry {
                #expect(expiry <= deadline)
                if let payload = wheel.nextExpired(at: expiry) {
                    #expect(payload == 1)
                    #expect(expiry == deadline)
                }
                expiries += 1
                #expect(expiries < 1_000)
            }
            #expect(wheel.count == 0)
        }

        @Test("the next expiry is never later than the earliest deadline")
        func nextExpiryBound() {
            var wheel = TimerWheel<Int>()
            var generator = SystemRandomNumberGenerator()
            for round in 0..<200 {
                let deadline = wheel.elapsed + UInt64.random(in: 1...1_000_000, using: &generator)
                let id = wheel.schedule(at: deadline, round)
                #expect(wheel.nextExpiry! <= deadline)
                if round % 3 == 0 { _ = wheel.cancel(id) }
                _ = wheel.nextExpired(at: wheel.elapsed + UInt64.random(in: 0...5_000, using: &generator))
            }
        }
    }
}
