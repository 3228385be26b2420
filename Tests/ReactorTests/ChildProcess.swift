import CReactor
import Glibc
import Reactor
import SystemPackage

/// A program run by a test, with its standard output and error read through a pipe
/// registered on a loop. Standard input is /dev/null; the environment is empty, so no
/// proxy settings or backend choices leak in.
struct ChildProcess {
    let pid: pid_t
    let output: AsyncFD

    /// Starts the program found in `PATH` (or at a path) by the first of `arguments`.
    static func spawn(_ arguments: [String], on loop: EventLoop) throws -> ChildProcess {
        // Both ends close-on-exec from birth, so no other child inherits them.
        var ends: [CInt] = [-1, -1]
        guard creactor_pipe(&ends) == 0 else { throw IOError(.create, Errno(rawValue: errno)) }
        // The child's end blocks, as programs expect of their output.
        _ = fcntl(ends[1], F_SETFL, fcntl(ends[1], F_GETFL) & ~O_NONBLOCK)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, ends[1], 1)
        posix_spawn_file_actions_adddup2(&actions, ends[1], 2)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        let environment: [UnsafeMutablePointer<CChar>?] = [nil]
        var pid = pid_t()
        let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, argv, environment)
        close(ends[1])
        guard spawned == 0 else {
            close(ends[0])
            throw IOError(.create, Errno(rawValue: spawned))
        }
        do {
            return ChildProcess(pid: pid, output: try AsyncFD(FileDescriptor(rawValue: ends[0]), on: loop))
        } catch {
            close(ends[0])
            Glibc.kill(pid, SIGKILL)
            _ = waitpid(pid, nil, 0)
            throw error
        }
    }

    /// Reads output until `stop` says the bytes so far are enough, or end-of-file.
    func read(until stop: ([UInt8]) -> Bool = { _ in false }) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while !stop(bytes) {
            let count = try await output.whenReadable { (fd) throws(Errno) in
                let count = buffer.withUnsafeMutableBytes { Glibc.read(fd.rawValue, $0.baseAddress, $0.count) }
                if count < 0 { throw Errno(rawValue: errno) }
                return count
            }
            if count == 0 { break }
            bytes += buffer[..<count]
        }
        return bytes
    }

    /// Kills the process and reaps it, if it still runs.
    func kill() {
        Glibc.kill(pid, SIGKILL)
        try? output.close()
        _ = reap()
    }

    /// Asks the process to stop with SIGTERM, reads what it still writes until it closes
    /// its output, and reaps it. Returns its exit status, or -1 if a signal ended it.
    func terminate() async throws -> CInt {
        Glibc.kill(pid, SIGTERM)
        _ = try await read()
        try output.close()
        return reap()
    }

    /// Waits for the process to exit. Returns its exit status, or -1 if a signal ended it.
    func reap() -> CInt {
        var status: CInt = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return status & 0x7F == 0 ? (status >> 8) & 0xFF : -1
    }

    /// The CPU time the process has used, in clock ticks (utime + stime of /proc/PID/stat).
    var cpuTicks: Int {
        guard let stat = processStat(pid) else { return -1 }
        return Int(stat.fields[11])! + Int(stat.fields[12])!
    }

    /// How many descriptors the process has open.
    var openDescriptorCount: Int {
        guard let directory = opendir("/proc/\(pid)/fd") else { return -1 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            if entry.pointee.d_name.0 != 0x2E { count += 1 }
        }
        return count
    }
}
