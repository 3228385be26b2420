// Starting, watching and stopping the processes of a benchmark: servers pinned with taskset, the
// load generator, wrk and strace. posix_spawn rather than Foundation's Process, so that the runner
// holds the pid (for /proc/PID/stat) and decides where every output goes.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where a child's standard output and error go.
enum Output {
    case null
    case file(String)
    /// A pipe whose read end the caller gets back.
    case pipe
}

/// A running child process.
struct Child {
    let pid: pid_t
    /// The read end of the child's stdout (and stderr) when it was spawned with `.pipe`.
    let outputFD: CInt?

    /// Whether the child has not exited yet. Reaps it if it has.
    func isRunning() -> Bool {
        var status: CInt = 0
        return waitpid(pid, &status, WNOHANG) == 0
    }

    /// Waits for the child to exit and returns its exit status (128 + signal when killed).
    @discardableResult
    func wait() -> CInt {
        var status: CInt = 0
        while waitpid(pid, &status, 0) == -1 {
            if errno != EINTR { return -1 }
        }
        return exitCode(status)
    }

    /// Sends `signal`, waits up to `grace` seconds, then kills. Returns the exit status.
    @discardableResult
    func stop(signal: CInt = SIGTERM, grace: Double = 3) -> CInt {
        kill(pid, signal)
        let deadline = monotonicSeconds() + grace
        var status: CInt = 0
        while monotonicSeconds() < deadline {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { return exitCode(status) }
            if reaped == -1 { return -1 }
            usleep(20_000)
        }
        kill(pid, SIGKILL)
        return wait()
    }
}

private func exitCode(_ status: CInt) -> CInt {
    // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift does not import.
    let signal = status & 0x7f
    return signal == 0 ? (status >> 8) & 0xff : 128 + signal
}

func monotonicSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

enum SpawnError: Error, CustomStringConvertible {
    case failed(command: [String], errno: CInt)
    var description: String {
        switch self {
        case .failed(let command, let code):
            return "could not start \(command.joined(separator: " ")): \(String(cString: strerror(code)))"
        }
    }
}

/// Starts `command` (looked up in PATH) with `output` for stdout and stderr, in `directory`.
func spawn(_ command: [String], output: Output = .null, environment extra: [String: String] = [:],
           directory: String? = nil) throws -> Child {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }

    var readEnd: CInt? = nil
    var writeEnd: CInt = -1
    switch output {
    case .null:
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
    case .file(let path):
        posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
    case .pipe:
        var fds: [CInt] = [-1, -1]
        guard pipe(&fds) == 0 else { throw SpawnError.failed(command: command, errno: errno) }
        // Close-on-exec for both ends, so that no other child inherits them.
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        readEnd = fds[0]
        writeEnd = fds[1]
        // dup2 clears FD_CLOEXEC on the copy, so only fds 1 and 2 survive the exec.
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
    }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    // posix_spawn_file_actions_addchdir_np is not visible to Swift here: let a shell change directory.
    let command = directory.map { ["sh", "-c", "cd \"$0\" && exec \"$@\"", $0] + command } ?? command

    var environment = ProcessInfo.processInfo.environment
    for (key, value) in extra { environment[key] = value }
    let argv = command.map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        argv.forEach { free($0) }
        envp.forEach { free($0) }
    }

    var pid: pid_t = 0
    let result = posix_spawnp(&pid, command[0], &actions, nil, argv, envp)
    if writeEnd >= 0 { close(writeEnd) }
    guard result == 0 else {
        if let readEnd { close(readEnd) }
        throw SpawnError.failed(command: command, errno: result)
    }
    return Child(pid: pid, outputFD: readEnd)
}

/// Runs `command` to completion and returns its exit status and combined output. A child still
/// running after `timeout` seconds is killed.
func capture(_ command: [String], directory: String? = nil, timeout: Double = 1800) -> (status: CInt, output: String) {
    guard let child = try? spawn(command, output: .pipe, directory: directory) else {
        return (127, "could not start \(command[0])")
    }
    var output = [UInt8]()
    readLines(from: child, timeout: timeout) { _ in } raw: { output.append(contentsOf: $0) }
    return (child.wait(), String(decoding: output, as: UTF8.self))
}

/// Reads the child's output until it closes it, calling `line` for each complete line as soon as
/// it arrives. Kills the child when `timeout` seconds pass first. Closes the pipe.
func readLines(from child: Child, timeout: Double, line: (String) -> Void,
               raw: ([UInt8]) -> Void = { _ in }) {
    guard let fd = child.outputFD else { return }
    defer { close(fd) }
    let deadline = monotonicSeconds() + timeout
    var pending = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let remaining = deadline - monotonicSeconds()
        if remaining <= 0 {
            kill(child.pid, SIGKILL)
            return
        }
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, CInt(min(remaining, 1) * 1000) + 1)
        if ready < 0 && errno != EINTR { return }
        if ready <= 0 { continue }
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { break }
        let chunk = Array(buffer[0..<count])
        raw(chunk)
        pending.append(contentsOf: chunk)
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            line(String(decoding: pending[..<newline], as: UTF8.self))
            pending.removeSubrange(...newline)
        }
    }
    if !pending.isEmpty { line(String(decoding: pending, as: UTF8.self)) }
}

/// User plus system CPU time of a whole process (all its threads), in seconds, from
/// /proc/PID/stat fields 14 and 15, in clock ticks.
func cpuSeconds(of pid: pid_t) -> Double? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return nil }
    // After "pid (comm)" the fields start at 3 (state): utime is field 14, stime field 15.
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(CInt(_SC_CLK_TCK)))
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
func acceptsConnections(port: Int) -> Bool {
    guard let fd = connectLoopback(port: port) else { return false }
    close(fd)
    return true
}

/// A blocking TCP connection to 127.0.0.1:`port`, or nil if none could be made.
func connectLoopback(port: Int) -> CInt? {
    let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return nil }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard result == 0 else {
        close(fd)
        return nil
    }
    return fd
}

/// Raises the soft limit on open files to the hard limit; children inherit it (1,000 connections
/// need more than the usual 1,024).
func raiseOpenFileLimit() {
    var limit = rlimit()
    if getrlimit(CInt(RLIMIT_NOFILE.rawValue), &limit) == 0 {
        limit.rlim_cur = limit.rlim_max
        setrlimit(CInt(RLIMIT_NOFILE.rawValue), &limit)
    }
}
