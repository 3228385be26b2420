import Testing

@testable import Reactor

extension ReactorTests {
    @Suite struct RegistrationTableTests {
        @Test("a freed slot is reused under a new generation, and the old token is stale")
        func staleToken() {
            var table = RegistrationTable()
            let first = table.insert { ScheduledIO(descriptor: 10, token: $0, readiness: [], reactor: nil) }
            table.remove(first.token)
            #expect(table.lookUp(first.token) == nil)
            let second = table.insert { ScheduledIO(descriptor: 11, token: $0, readiness: [], reactor: nil) }
            #expect(second.token.index == first.token.index)
            #expect(second.token.generation != first.token.generation)
            #expect(table.lookUp(first.token) == nil)
            #expect(table.lookUp(second.token) === second)
            table.remove(first.token)
            #expect(table.lookUp(second.token) === second, "removing by a stale token frees nothing")
            #expect(table.count == 1)
        }
    }
}
