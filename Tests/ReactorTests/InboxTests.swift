import Synchronization
import SystemPackage
import Testing

@testable import Reactor

extension ReactorTests {
    @Suite struct InboxTests {
        // Only the producer that finds the loop not yet notified writes the wake-up; while
        // the loop is awake, or a wake-up is on its way, a push writes nothing.
        @Test("pushes wake a sleeping loop once per burst, and an awake one never")
        func oneWakeUpPerBurst() {
            let inbox = Inbox()
            let backend = CountingWakeUps()
            let job = RunItem(.closure({}))
            let drain = { (contents: inout Inbox.Contents) -> Int in
                defer { contents.jobs.removeAll() }
                return contents.jobs.count
            }
            var accepted = 0
            for _ in 0..<100 where inbox.push(job, waking: backend) { accepted += 1 }
            #expect(accepted == 100)
            #expect(backend.wakeUps == 0, "the loop is awake")
            let first = inbox.take(otherwise: 0, drain)
            #expect(first == 100)

            // The loop's look before it blocks: it clears the flag, then finds nothing.
            inbox.wakePending.store(false, ordering: .sequentiallyConsistent)
            let beforeBlocking = inbox.take(otherwise: -1, drain)
            #expect(beforeBlocking == -1)
            for _ in 0..<100 { _ = inbox.push(job, waking: backend) }
            #expect(backend.wakeUps == 1)

            // Awake again after its wait: the jobs are news, and later pushes wake nothing.
            inbox.wakePending.store(true, ordering: .relaxed)
            for _ in 0..<100 { _ = inbox.push(job, waking: backend) }
            #expect(backend.wakeUps == 1)
            let second = inbox.take(otherwise: 0, drain)
            #expect(second == 200)
            let afterTake = inbox.take(otherwise: -1, drain)
            #expect(afterTake == -1, "a take leaves no news behind")
        }
    }
}

/// A backend that only counts its wake-ups.
private final class CountingWakeUps: ReactorBackend {
    private let count = Atomic<Int>(0)
    var wakeUps: Int { count.load(ordering: .relaxed) }

    func wake() { count.add(1, ordering: .relaxed) }
    func register(_ fd: CInt, token: Token) throws(Errno) {}
    func deregister(_ fd: CInt, token: Token) throws(Errno) {}
    func arm(_ fd: CInt, token: Token, interest: Readiness) {}
    func wait(into events: inout [BackendEvent], timeout: Duration?) throws(Errno) {}
    func close() {}
    var descriptors: [CInt] { [] }
    var kind: BackendKind { .poll }
}
