import Testing

@testable import Reactor

extension ReactorTests {
    @Suite struct ReadmeTests {
        @Test("the README's example runs as written", arguments: BackendKind.availableHere)
        func example(backend: BackendKind) async throws {
            let printed = Recorder<String>()
            func print(_ line: String) { printed.append(line) }
            try await withEventLoopGroup(loopCount: 2, backend: backend) { group in
                let loop = group.next()
                try await Task(executorPreference: loop) {
                    let pipe = try Pipe()
                    try await pipe.writer.write(Array("hello".utf8))
                    var buffer = [UInt8](repeating: 0, count: 64)
                    let count = try await pipe.reader.read(into: &buffer)
                    print(String(decoding: buffer[..<count], as: UTF8.self))

                    try await loop.clock.sleep(for: .milliseconds(5))
                    do {
                        _ = try await withTimeout(.milliseconds(50)) { try await pipe.reader.read(upTo: 16) }
                    } catch is TimeoutError {
                        print("nothing more to read")
                    }
                    try pipe.reader.close()
                    try pipe.writer.close()
                }.value
            }
            #expect(printed.elements == ["hello", "nothing more to read"])
        }
    }
}
