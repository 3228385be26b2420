import Testing

@testable import Reactor

/// One datagram of a batch, copied out so that `#expect` can compare it (it cannot
/// look into a noncopyable batch).
struct BatchEntry: Equatable {
    var bytes: [UInt8]
    var address: SocketAddress?
    var isTruncated = false
}

/// The datagrams `batch` holds, copied out.
func entries(of batch: borrowing DatagramBatch) -> [BatchEntry] {
    (0..<batch.count).map { BatchEntry(bytes: batch.bytes(at: $0), address: batch.address(at: $0), isTruncated: batch.isTruncated(at: $0)) }
}

extension ReactorTests {
    @Suite struct DatagramBatchTests {
        @Test("appended datagrams keep their bytes and destinations; removeAll empties the batch")
        func append() throws {
            var batch = DatagramBatch(capacity: 3, datagramSize: 4)
            #expect(entries(of: batch) == [])
            let destination = SocketAddress.ipv4(10, 0, 0, 1, port: 53)
            let path = try SocketAddress.unix(path: "/run/app.sock")
            batch.append([1, 2, 3, 4], to: destination)
            batch.append(repeatElement(7, count: 2))
            batch.append([UInt8](), to: path)
            #expect(entries(of: batch) == [
                BatchEntry(bytes: [1, 2, 3, 4], address: destination),
                BatchEntry(bytes: [7, 7], address: nil),
                BatchEntry(bytes: [], address: path),
            ])
            let total = batch.withBytes(at: 0) { $0.reduce(0, +) }
            #expect(total == 10)

            batch.removeAll()
            let isEmpty = batch.isEmpty
            #expect(isEmpty)
            batch.append([9], to: path)
            #expect(entries(of: batch) == [BatchEntry(bytes: [9], address: path)])
        }

        @Test("a batch moves between tasks")
        func sendable() async throws {
            var batch = DatagramBatch(capacity: 1, datagramSize: 1)
            batch.append([5])
            let moved = await Task { [batch = consume batch] in entries(of: batch) }.value
            #expect(moved == [BatchEntry(bytes: [5], address: nil)])
        }
    }
}
