import Glibc
import Synchronization
import SystemPackage
import Testing

@testable import Reactor

/// The root of every suite: runs them all inside one check that the process ends with
/// the descriptors it started with.
@Suite(DescriptorLeakCheck(), .timeLimit(.minutes(5)))
struct ReactorTests {}

/// Counts `/proc/self/fd` before and after the scope it wraps.
struct DescriptorLeakCheck: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        // The default group is process-wide and lives on: start it before counting.
        _ = try EventLoopGroup.shared
        let before = Set(openDescriptors())
        try await function()
        // A sanitizer that reports (or matches a suppression) starts a symbolizer process
        // and keeps two pipes to it open: those are its descriptors, not a leak.
        let symbolizer = pipesToSymbolizer()
        let new = Set(openDescriptors()).subtracting(before).filter { !symbolizer.contains(pipeInode(of: $0) ?? "") }
        #expect(new.isEmpty, "descriptors open after the suite that were not before: \(new.sorted())")
    }
}

/// The target of `/proc/self/fd/N` if it is a pipe, as "pipe:[inode]".
private func pipeInode(of fd: CInt, process: String = "self") -> String? {
    var target = [CChar](repeating: 0, count: 64)
    let length = readlink("/proc/\(process)/fd/\(fd)", &target, target.count - 1)
    guard length > 0 else { return nil }
    let text = String(decoding: target.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return text.hasPrefix("pipe:") ? text : nil
}

/// The pipes that this process's `llvm-symbolizer` children hold.
private func pipesToSymbolizer() -> Set<String> {
    guard let directory = opendir("/proc") else { return [] }
    defer { closedir(directory) }
    var pipes = Set<String>()
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard let pid = pid_t(name), isSymbolizerChild(pid), let fds = opendir("/proc/\(pid)/fd") else { continue }
        defer { closedir(fds) }
        while let fdEntry = readdir(fds) {
            let fdName = withUnsafeBytes(of: fdEntry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let fd = CInt(fdName), let pipe = pipeInode(of: fd, process: String(pid)) { pipes.insert(pipe) }
        }
    }
    return pipes
}

/// Whether `pid` is a child of this process named `llvm-symbolizer`.
private func isSymbolizerChild(_ pid: pid_t) -> Bool {
    guard let stat = processStat(pid) else { return false }
    return stat.command.hasPrefix("llvm-symbolizer") && stat.fields.count > 1 && pid_t(stat.fields[1]) == getpid()
}

/// `/proc/PID/stat`: the command name, and the fields after it (state, parent, ...).
func processStat(_ pid: pid_t) -> (command: Substring, fields: [Substring])? {
    guard let file = fopen("/proc/\(pid)/stat", "r") else { return nil }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 4096)
    guard fgets(&line, CInt(line.count), file) != nil else { return nil }
    let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    // The command name sits in parentheses and may hold spaces.
    guard let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")") else { return nil }
    return (text[text.index(after: open)..<close], text[text.index(after: close)...].split(separator: " "))
}

/// The descriptors open in this process, from `/proc/self/fd`.
func openDescriptors() -> [CInt] {
    guard let directory = opendir("/proc/self/fd") else { return [] }
    defer { closedir(directory) }
    var descriptors: [CInt] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if let fd = CInt(name), fd != dirfd(directory) { descriptors.append(fd) }
    }
    return descriptors
}

/// Runs `body` in a task whose executor preference is `loop`, and returns its result.
func onLoop<Result: Sendable>(
    _ loop: EventLoop, _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await Task(executorPreference: loop) { try await body() }.value
}

/// Runs `body` with a fresh one-loop group on `backend`, shut down afterwards.
func withLoop<Result: Sendable>(
    _ backend: BackendKind, _ body: (EventLoop) async throws -> Result
) async throws -> Result {
    try await withEventLoopGroup(loopCount: 1, backend: backend) { group in
        try await body(group.loops[0])
    }
}

/// Waits until `condition` holds: synchronises on a state change, not on time. It
/// yields at first, then looks every millisecond, so that a long wait does not keep a
/// thread of Swift's small cooperative pool busy. Gives up after a minute, far beyond any
/// legitimate wait, so that a bug fails the test instead of hanging it.
func waitUntil(
    _ condition: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let limit = ContinuousClock.now.advanced(by: .seconds(60))
    var looks = 0
    while !condition() {
        if ContinuousClock.now > limit {
            Issue.record("the awaited condition never held", sourceLocation: sourceLocation)
            throw CancellationError()
        }
        looks += 1
        if looks < 100 {
            await Task.yield()
        } else {
            let clock = try EventLoopGroup.shared.loops[0].clock
            try await clock.sleep(for: .milliseconds(1))
        }
    }
}

/// Races a cancel against one byte, `rounds` times: starts `read` in a task on `loop`,
/// lets every other round's read reach its wait (`isWaiting`), writes the round's byte
/// with `write` (which returns what the syscall did), and cancels the read. Expects the
/// read to return the byte, or to throw `CancellationError` and the next read to return
/// it: no byte is lost either way.
func expectCancelRacingByteLosesNothing(
    rounds: Int, on loop: EventLoop, isWaiting: () -> Bool, write: (UInt8) -> Int,
    read: @escaping @Sendable () async throws -> [UInt8]?
) async throws {
    for round in 0..<rounds {
        let byte = UInt8(truncatingIfNeeded: round)
        let reading = Task(executorPreference: loop) { try await read() }
        if round % 2 == 0 { try await waitUntil(isWaiting) }
        #expect(write(byte) == 1)
        reading.cancel()
        switch await reading.result {
        case .success(let bytes):
            #expect(bytes == [byte])
        case .failure(let error):
            #expect(error is CancellationError)
            #expect(try await onLoop(loop) { try await read() } == [byte])
        }
    }
}

/// Both ends of a `socketpair(AF_UNIX, SOCK_STREAM)`, non-blocking and close-on-exec.
func makeSocketPair() throws -> (CInt, CInt) {
    var ends: [CInt] = [-1, -1]
    let type = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
    guard socketpair(AF_UNIX, type, 0, &ends) == 0 else { throw IOError(.create, .init(rawValue: errno)) }
    return (ends[0], ends[1])
}

/// Whether `error` is a `CancellationError`.
func isCancellation(_ error: (any Error)?) -> Bool { error is CancellationError }

/// A counter that tasks on any thread may bump.
final class Counter: Sendable {
    private let storage = Atomic<Int>(0)
    func increment() { add(1) }
    func add(_ amount: Int) { storage.add(amount, ordering: .relaxed) }
    var value: Int { storage.load(ordering: .relaxed) }
}

/// A list that tasks on any thread may append to.
final class Recorder<Element: Sendable>: Sendable {
    private let storage = Locked<[Element]>([])
    func append(_ element: Element) { storage.withLock { $0.append(element) } }
    var elements: [Element] { storage.withLock { $0 } }
}

/// A directory under `/tmp` for socket files, removed with everything in it by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/reactor-test-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw IOError(.create, Errno(rawValue: errno))
        }
        path = String(cString: made)
    }

    func address(_ name: String) throws -> SocketAddress {
        try .unix(path: "\(path)/\(name)")
    }

    func exists(_ name: String) -> Bool {
        var status = stat()
        return lstat("\(path)/\(name)", &status) == 0
    }

    func remove() {
        if let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { unlink("\(path)/\(name)") }
            }
            closedir(directory)
        }
        rmdir(path)
    }
}

/// `count` bytes of a pattern that does not repeat within a page, built without the
/// per-element generic calls that make a debug build's `map` slow on the shared pool.
func patternBytes(_ count: Int) -> [UInt8] {
    [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        var word: UInt64 = 0x9E37_79B9_7F4A_7C15
        let base = UnsafeMutableRawPointer(buffer.baseAddress!)
        var offset = 0
        while offset + 8 <= count {
            word = word &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            base.storeBytes(of: word, toByteOffset: offset, as: UInt64.self)
            offset += 8
        }
        while offset < count {
            base.storeBytes(of: UInt8(truncatingIfNeeded: offset), toByteOffset: offset, as: UInt8.self)
            offset += 1
        }
        initialized = count
    }
}

/// One message of `size` bytes whose every byte is `index`, truncated.
func message(_ index: Int, size: Int = 100) -> [UInt8] {
    [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: size)
}

/// Whether two byte arrays are equal, compared with `memcmp`.
func sameBytes(_ first: [UInt8], _ second: [UInt8]) -> Bool {
    first.count == second.count
        && first.withUnsafeBytes { a in
            second.withUnsafeBytes { b in a.isEmpty || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 }
        }
}

/// Runs `body` with an address on 127.0.0.1 whose TCP port refuses connections: a socket
/// holds the port bound and never listens. A port closed instead could be handed to the
/// next `bind` to port 0 of a test beside this one, and the connect meant to be refused
/// would reach that test's listener.
func withRefusingPort<Result>(_ body: (SocketAddress) async throws -> Result) async throws -> Result {
    let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
    try #require(fd >= 0)
    defer { close(fd) }
    try #require(SocketAddress.ipv4(127, 0, 0, 1, port: 0).withSockAddr { bind(fd, $0, $1) } == 0)
    return try await body(try SocketCalls.address(of: fd, peer: false))
}
