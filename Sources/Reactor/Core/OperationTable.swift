/// The operations a completion backend runs for this loop's tasks: a slab of slots,
/// each holding the continuation of the task that waits for one operation's end.
///
/// Loop thread only: operations start on the loop's thread, and their completions are
/// delivered there. A slot's generation changes when it is freed, so an ID kept by a
/// late cancellation handler names nothing once its operation has ended.
struct OperationTable: ~Copyable {
    private var continuations: [UnsafeContinuation<Int32, Never>?] = []
    private var generations: [UInt32] = []
    private var free: [Int] = []
    /// Slots reserved and not yet completed.
    private(set) var inFlight = 0

    /// Reserves a slot for an operation about to start.
    mutating func reserve() -> OperationID {
        let index: Int
        if let reused = free.popLast() {
            index = reused
        } else {
            index = continuations.count
            continuations.append(nil)
            generations.append(0)
        }
        inFlight += 1
        return OperationID(index: index, generation: generations[index])
    }

    /// Frees a slot reserved for an operation that did not start after all.
    mutating func release(_ id: OperationID) {
        precondition(generations[id.index] == id.generation && continuations[id.index] == nil)
        generations[id.index] &+= 1
        free.append(id.index)
        inFlight -= 1
    }

    /// Stores the continuation that the operation's completion resumes.
    mutating func attach(_ continuation: UnsafeContinuation<Int32, Never>, to id: OperationID) {
        precondition(generations[id.index] == id.generation && continuations[id.index] == nil)
        continuations[id.index] = continuation
    }

    /// Frees the slot of a completed operation and resumes its task with the result.
    /// A completion for a slot that was freed since (it cannot happen: each operation
    /// completes once) is ignored.
    mutating func complete(_ completion: Completion) {
        let id = completion.operation
        guard id.index < continuations.count, generations[id.index] == id.generation,
            let continuation = continuations[id.index]
        else { return }
        continuations[id.index] = nil
        generations[id.index] &+= 1
        free.append(id.index)
        inFlight -= 1
        continuation.resume(returning: completion.result)
    }
}
