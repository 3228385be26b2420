import Testing

@testable import Reactor

/// A ledger's view of one buffer: the slices lent from it, and whether the ring holds it.
/// (`#expect` cannot call members of a noncopyable value itself.)
private func account(_ ledger: borrowing ProvidedBufferLedger, _ id: UInt16) -> (slices: Int, inRing: Bool) {
    (ledger.slices(of: id), ledger.isInRing(id))
}

extension ReactorTests {
    @Suite struct ProvidedBufferLedgerTests {
        @Test("whole buffers: every completion with a buffer takes it out of the ring, and its slice brings it back")
        func wholeBuffers() {
            var ledger = ProvidedBufferLedger(count: 2, bufferSize: 100, incremental: false)
            let first = ledger.record(0, result: 30, kernelKeepsIt: false)
            let empty = ledger.record(1, result: 0, kernelKeepsIt: false)
            #expect(first == 0)
            #expect(empty == 0, "an empty read still took the buffer")
            #expect(ledger.inRingCount == 0)
            let returned = [ledger.giveBack(1), ledger.giveBack(0)]
            #expect(returned == [true, true])
            #expect(ledger.inRingCount == 2)
            let again = ledger.record(0, result: 100, kernelKeepsIt: false)
            #expect(again == 0, "the next read starts at the buffer's beginning again")
        }

        @Test("a negative result consumed nothing, in either mode", arguments: [false, true])
        func errorsConsumeNothing(incremental: Bool) {
            var ledger = ProvidedBufferLedger(count: 1, bufferSize: 100, incremental: incremental)
            let start = ledger.record(0, result: -104, kernelKeepsIt: false)
            #expect(start == nil)
            #expect(account(ledger, 0) == (0, true))
        }

        @Test("incremental: each completion's bytes start where the last one naming the buffer stopped")
        func offsetsAdvance() {
            var ledger = ProvidedBufferLedger(count: 2, bufferSize: 100, incremental: true)
            let starts = [
                ledger.record(0, result: 10, kernelKeepsIt: true),
                ledger.record(0, result: 25, kernelKeepsIt: true),
                ledger.record(0, result: 65, kernelKeepsIt: false),
                ledger.record(1, result: 5, kernelKeepsIt: true),
            ]
            #expect(starts == [0, 10, 35, 0])
            #expect(account(ledger, 0) == (3, false), "filled up: out of the ring")
            #expect(account(ledger, 1) == (1, true))
            #expect(ledger.inRingCount == 1)
        }

        @Test("incremental: a buffer goes back only once the kernel is done with it and every slice came back")
        func backAfterKernelAndEverySlice() {
            var ledger = ProvidedBufferLedger(count: 1, bufferSize: 100, incremental: true)
            _ = ledger.record(0, result: 10, kernelKeepsIt: true)
            _ = ledger.record(0, result: 10, kernelKeepsIt: true)
            let whileFilling = [ledger.giveBack(0), ledger.giveBack(0)]
            #expect(whileFilling == [false, false], "both readers are done, but the kernel still fills it")
            #expect(account(ledger, 0) == (0, true))
            _ = ledger.record(0, result: 50, kernelKeepsIt: true)
            _ = ledger.record(0, result: 30, kernelKeepsIt: false)
            let oneOut = ledger.giveBack(0)
            #expect(!oneOut, "one slice is still out")
            #expect(account(ledger, 0) == (1, false))
            let last = ledger.giveBack(0)
            #expect(last)
            #expect(account(ledger, 0) == (0, true))
            let next = ledger.record(0, result: 1, kernelKeepsIt: true)
            #expect(next == 0, "back whole")
        }

        @Test("incremental: a completion without bytes leaves the buffer to the kernel, with or without BUF_MORE",
              arguments: [false, true])
        func emptyCompletionKeepsBuffer(kernelKeepsIt: Bool) {
            var ledger = ProvidedBufferLedger(count: 1, bufferSize: 100, incremental: true)
            _ = ledger.record(0, result: 40, kernelKeepsIt: true)
            let empty = ledger.record(0, result: 0, kernelKeepsIt: kernelKeepsIt)
            #expect(empty == nil)
            #expect(account(ledger, 0) == (1, true))
            let rest = ledger.record(0, result: 60, kernelKeepsIt: false)
            #expect(rest == 40)
        }
    }
}
