import Glibc
import SystemPackage
import Testing

@testable import Reactor

extension ReactorTests {
    /// Resolves only `localhost`, IP literals and names that never leave the process: no
    /// test here sends a query to a name server.
    @Suite struct ResolverTests {
        /// Runs `body` in a task that is cancelled before `body` starts.
        private func inCancelledTask<Result: Sendable>(
            _ body: @escaping @Sendable () async throws -> Result
        ) async -> Swift.Result<Result, any Error> {
            await Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return try await body()
            }.result
        }

        private static func addresses(_ texts: [String]) -> [SocketAddress] {
            texts.map { SocketAddress($0)! }
        }

        @Test("Happy Eyeballs order: the first answer's family leads, then the families alternate, duplicates dropped", arguments: [
            (["192.0.2.1:80", "192.0.2.2:80", "[2001:db8::1]:80", "[2001:db8::2]:80", "[2001:db8::3]:80"],
             ["192.0.2.1:80", "[2001:db8::1]:80", "192.0.2.2:80", "[2001:db8::2]:80", "[2001:db8::3]:80"]),
            (["[2001:db8::1]:80", "[2001:db8::2]:80", "192.0.2.1:80"],
             ["[2001:db8::1]:80", "192.0.2.1:80", "[2001:db8::2]:80"]),
            (["192.0.2.2:80", "192.0.2.1:80", "192.0.2.3:80"],
             ["192.0.2.2:80", "192.0.2.1:80", "192.0.2.3:80"]),
            (["[2001:db8::2]:80", "[2001:db8::1]:80"],
             ["[2001:db8::2]:80", "[2001:db8::1]:80"]),
            (["[2001:db8::1]:80", "192.0.2.1:80", "[2001:db8::1]:80", "192.0.2.1:80", "192.0.2.2:80"],
             ["[2001:db8::1]:80", "192.0.2.1:80", "192.0.2.2:80"]),
            (["192.0.2.1:80"], ["192.0.2.1:80"]),
            ([], []),
        ])
        func happyEyeballsOrder(input: [String], expected: [String]) {
            #expect(DNS.happyEyeballsOrder(Self.addresses(input)) == Self.addresses(expected))
        }

        @Test("localhost resolves offline to loopback addresses with the port")
        func localhost() async throws {
            let addresses = try await DNS.resolve(host: "localhost", port: 8080)
            #expect(!addresses.isEmpty)
            #expect(addresses.allSatisfy { $0.isLoopback })
            #expect(addresses.allSatisfy { $0.port == 8080 })
            #expect(Set(addresses).count == addresses.count)
            #expect(DNS.happyEyeballsOrder(addresses) == addresses)
        }

        @Test("many lookups at once all finish")
        func concurrentLookups() async throws {
            try await withThrowingTaskGroup(of: [SocketAddress].self) { group in
                for port in UInt16(1)...16 { group.addTask { try await DNS.resolve(host: "localhost", port: port) } }
                var count = 0
                for try await addresses in group {
                    #expect(!addresses.isEmpty)
                    count += 1
                }
                #expect(count == 16)
            }
        }

        @Test("an IP literal is answered without suspending, even in a cancelled task", arguments: [
            "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1", "fe80::1%lo",
        ])
        func literal(host: String) async throws {
            let expected = try SocketAddress(ipAddress: host, port: 443)
            let result = await inCancelledTask { try await DNS.resolve(host: host, port: 443) }
            #expect(try result.get() == [expected])
        }

        @Test("getaddrinfo reads the numeric forms that are not literals to the parser")
        func numericLookup() throws {
            #expect(try DNS.lookup(host: "127.1", port: 7).get() == [.ipv4(127, 0, 0, 1, port: 7)])
        }

        @Test("a name under invalid. is not found, and never leaves the process", arguments: [
            "nonexistent.invalid", "NonExistent.INVALID.", "invalid", "a.b.invalid",
        ])
        func invalidDomain(host: String) async throws {
            #expect(DNS.isUnderInvalidDomain(host))
            let result = await inCancelledTask { try await DNS.resolve(host: host, port: 80) }
            let error = try #require(throws: ResolutionError.self) { try result.get() }
            #expect(error.isNotFound)
            #expect(error.code == .noName)
            #expect(error.host == host)
        }

        @Test("names that only look like invalid. are resolved", arguments: [
            "invalid.example", "notinvalid", "invalid.example.com.",
        ])
        func notInvalidDomain(host: String) {
            #expect(!DNS.isUnderInvalidDomain(host))
        }

        @Test("a failure of getaddrinfo itself becomes a ResolutionError")
        func getaddrinfoFailure() async throws {
            // glibc refuses an IPv6 literal whose zone names no interface without a query.
            let error = try await #require(throws: ResolutionError.self) {
                try await DNS.resolve(host: "fe80::1%nonexistent0", port: 80)
            }
            #expect(error.isNotFound)
            #expect(error.host == "fe80::1%nonexistent0")
            #expect(error.systemError == nil)
        }

        @Test("a name with a NUL in it is not found, and is not cut short")
        func nulInName() async throws {
            let error = try await #require(throws: ResolutionError.self) {
                try await DNS.resolve(host: "localhost\0.example", port: 80)
            }
            #expect(error.code == .noName)
        }

        @Test("a lookup in a cancelled task throws CancellationError")
        func cancelledBeforeLookup() async {
            let result = await inCancelledTask { try await DNS.resolve(host: "localhost", port: 80) }
            #expect(throws: CancellationError.self) { try result.get() }
        }

        @Test("the error names the host and gai_strerror's reason")
        func errorDescription() {
            let error = ResolutionError(host: "x.invalid", code: .noName)
            #expect(error.description == "cannot resolve \"x.invalid\": Name or service not known (EAI -2)")
            #expect(ResolutionError.Code.noData.description == "No address associated with hostname")
            #expect(ResolutionError(host: "x", code: .noData).isNotFound)
            #expect(!ResolutionError(host: "x", code: .temporaryFailure).isNotFound)
            #expect(ResolutionError(host: "x", code: .temporaryFailure).isTemporary)
            let system = ResolutionError(host: "x", code: .system, systemError: .tooManyOpenFiles)
            #expect(system.description.contains("\(Errno.tooManyOpenFiles)"))
        }

        // MARK: The pool

        @Test("cancelling a running lookup resumes at once; its late result is dropped")
        func cancelRunning() async throws {
            let pool = ResolverPool(maximumThreads: 1, idleTimeout: .milliseconds(50))
            let started = Counter(), released = Counter(), finished = Counter()
            let task = Task {
                try await pool.run { () -> Int in
                    started.increment()
                    while released.value == 0 { usleep(1_000) }
                    finished.increment()
                    return 1
                }
            }
            try await waitUntil { started.value == 1 }
            task.cancel()
            await #expect(throws: CancellationError.self) { try await task.value }
            #expect(finished.value == 0, "the task resumed before its work ended")
            released.increment()
            try await waitUntil { finished.value == 1 }
            #expect(try await pool.run { 2 } == 2)
        }

        @Test("a lookup cancelled while queued resumes at once and never runs")
        func cancelQueued() async throws {
            let pool = ResolverPool(maximumThreads: 1, idleTimeout: .milliseconds(50))
            let started = Counter(), released = Counter(), queuedRan = Counter()
            let blocker = Task {
                try await pool.run { () -> Int in
                    started.increment()
                    while released.value == 0 { usleep(1_000) }
                    return 0
                }
            }
            try await waitUntil { started.value == 1 }
            let queued = Task { try await pool.run { queuedRan.increment() } }
            try await waitUntil { pool.queuedJobCount == 1 }
            queued.cancel()
            await #expect(throws: CancellationError.self) { try await queued.value }
            released.increment()
            #expect(try await blocker.value == 0)
            // One thread takes jobs in order: once this one ran, the cancelled one was skipped.
            #expect(try await pool.run { 3 } == 3)
            #expect(queuedRan.value == 0)
        }

        @Test("the pool starts threads up to its maximum, queues the rest, and retires idle threads")
        func threadLifecycle() async throws {
            let pool = ResolverPool(maximumThreads: 2, idleTimeout: .milliseconds(20))
            let started = Counter(), released = Counter()
            let tasks = (0..<6).map { index in
                Task {
                    try await pool.run { () -> Int in
                        started.increment()
                        while released.value == 0 { usleep(1_000) }
                        return index
                    }
                }
            }
            try await waitUntil { started.value == 2 && pool.queuedJobCount == 4 }
            #expect(pool.threadCount == 2)
            released.increment()
            var results: [Int] = []
            for task in tasks { results.append(try await task.value) }
            #expect(results == Array(0..<6))
            #expect(started.value == 6)
            try await waitUntil { pool.threadCount == 0 }
            #expect(try await pool.run { 4 } == 4, "a pool whose threads retired starts a new one")
        }
    }
}
