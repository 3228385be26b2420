#if canImport(Glibc)
import Glibc
#endif
import CReactor
import SystemPackage

/// A unidirectional pipe (`pipe2(2)`) whose ends are registered with an event loop.
///
/// ```swift
/// let pipe = try Pipe()
/// try await pipe.writer.write([1, 2, 3])
/// let bytes = try await pipe.reader.read(upTo: 3)
/// ```
///
/// Both ends are created close-on-exec and non-blocking. Writing after the reader
/// closed throws ``IOError`` with `Errno.brokenPipe` and never raises `SIGPIPE`.
public struct Pipe: Sendable {
    /// The reading end.
    public let reader: PipeReader
    /// The writing end.
    public let writer: PipeWriter

    /// Creates a pipe whose ends are registered on `loop`.
    ///
    /// - Parameter loop: by default the calling thread's loop, or a default-group loop.
    /// - Throws: ``IOError`` with operation `.create` (for example `EMFILE`) or
    ///   `.register`; ``ReactorError/loopShutDown``.
    public init(on loop: EventLoop? = nil) throws {
        var ends: (CInt, CInt) = (-1, -1)
        let result = withUnsafeMutableBytes(of: &ends) { buffer in
            creactor_pipe(buffer.baseAddress!.assumingMemoryBound(to: CInt.self))
        }
        guard result == 0 else { throw IOError(.create, Errno(rawValue: errno)) }
        let readEnd = FileDescriptor(rawValue: ends.0)
        let writeEnd = FileDescriptor(rawValue: ends.1)
        let reader: AsyncFD
        do {
            reader = try AsyncFD(readEnd, on: loop)
        } catch {
            try? readEnd.close()
            try? writeEnd.close()
            throw error
        }
        do {
            writer = PipeWriter(try AsyncFD(writeEnd, on: reader.eventLoop))
        } catch {
            try? writeEnd.close()
            throw error
        }
        self.reader = PipeReader(reader)
    }
}

/// The reading end of a ``Pipe``.
public struct PipeReader: Sendable {
    /// The registered descriptor.
    public let source: AsyncFD

    init(_ source: AsyncFD) { self.source = source }

    /// Reads at most `buffer.count` bytes, waiting until at least one is available.
    ///
    /// - Returns: the number of bytes read; 0 at end-of-file (the writer closed).
    /// - Throws: ``IOError`` with operation `.read`; `CancellationError`;
    ///   ``ReactorError/closed``; ``ReactorError/loopShutDown``; ``ReactorError/busy``.
    nonisolated(nonsending) public func read(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
        try await source.readSome(into: buffer, .file, as: .read)
    }

    /// Reads at most `buffer.count` bytes into `buffer`. See ``read(into:)-(UnsafeMutableRawBufferPointer)``.
    nonisolated(nonsending) public func read(into buffer: inout [UInt8]) async throws -> Int {
        try await source.readSome(into: &buffer, .file, as: .read)
    }

    /// Reads at most `count` bytes, waiting until at least one is available.
    ///
    /// - Returns: the bytes read; empty at end-of-file.
    nonisolated(nonsending) public func read(upTo count: Int) async throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let read = try await read(into: &bytes)
        bytes.removeSubrange(read...)
        return bytes
    }

    /// The bytes written into the pipe, as chunks in buffers the loop lends only while the
    /// caller handles them. Each chunk is what one `read(2)` brought; the sequence ends
    /// once the writer closes. Iterate on the reader's loop; see ``ReceivedChunks``.
    /// Errors are those of ``read(into:)-(UnsafeMutableRawBufferPointer)``.
    public var chunks: ReceivedChunks {
        ReceivedChunks(source, .file, as: .read)
    }

    /// Closes the reading end; see ``AsyncFD/close()``.
    public func close() throws { try source.close() }
}

/// The writing end of a ``Pipe``.
public struct PipeWriter: Sendable {
    /// The registered descriptor.
    public let sink: AsyncFD

    init(_ sink: AsyncFD) { self.sink = sink }

    /// Writes all of `bytes`, waiting whenever the pipe is full.
    ///
    /// On io_uring, a short write may return before its bytes reach the pipe, and the
    /// next write waits for them, as for a socket's
    /// ``StreamSocket/write(_:)-(UnsafeRawBufferPointer)``; an error they meet is thrown
    /// by every later write.
    ///
    /// - Throws: ``IOError`` with operation `.write` (`Errno.brokenPipe` once the reader
    ///   is gone); `CancellationError`, ``ReactorError/closed``,
    ///   ``ReactorError/loopShutDown``, ``ReactorError/busy``. When it throws, a prefix of
    ///   `bytes` may have been written.
    nonisolated(nonsending) public func write(_ bytes: UnsafeRawBufferPointer) async throws {
        try await sink.writeAll(bytes, .file, as: .write)
    }

    /// Writes all of `bytes` (an `Array`, `ArraySlice`, or any collection of bytes; one
    /// that is not contiguous is copied first). See ``write(_:)-(UnsafeRawBufferPointer)``.
    nonisolated(nonsending) public func write(_ bytes: some Collection<UInt8>) async throws {
        try await sink.writeAll(bytes, .file, as: .write)
    }

    /// Closes the writing end; the reader then reads end-of-file. See ``AsyncFD/close()``.
    public func close() throws { try sink.close() }
}
