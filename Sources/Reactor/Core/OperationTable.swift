/// The operations a completion backend runs for this loop's tasks: a slab of slots,
/// each holding the continuation of the task that waits for one operation's end.
///
/// Loop thread only: operations start on the loop's thread, and their completions are
/// delivered there. A slot's generation changes when it is freed, so an ID kept by a
/// late cancellation handler names nothing once its operation has ended.
struct OperationTable: ~Copyable {
    /// Who an operation's completions go to.
    enum Receiver {
        case none
        /// The task that waits for the one completion.
        case task(UnsafeContinuation<Completion, Never>)
        /// An owner that takes every completion: of a multishot operation, or of one the
        /// task that started it did not wait for.
        case sink(any CompletionSink)

        /// Hands `completion` over: resumes the task, or calls the sink.
        func deliver(_ completion: Completion) {
            switch self {
            case .none: break
            case .task(let continuation): continuation.resume(returning: completion)
            case .sink(let sink): sink.receive(completion)
            }
        }
    }

    private var receivers: [Receiver] = []
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
            index = receivers.count
            receivers.append(.none)
            generations.append(0)
        }
        inFlight += 1
        return OperationID(index: index, generation: generations[index])
    }

    /// Frees a slot reserved for an operation that did not start after all, or whose
    /// completion its caller took straight from the backend.
    mutating func release(_ id: OperationID) {
        precondition(generations[id.index] == id.generation)
        generations[id.index] &+= 1
        free.append(id.index)
        inFlight -= 1
    }

    /// Stores the continuation that the operation's completion resumes.
    mutating func attach(_ continuation: UnsafeContinuation<Completion, Never>, to id: OperationID) {
        precondition(generations[id.index] == id.generation)
        receivers[id.index] = .task(continuation)
    }

    /// Sends every completion of the multishot operation `id` to `sink`.
    mutating func attach(_ sink: any CompletionSink, to id: OperationID) {
        precondition(generations[id.index] == id.generation)
        receivers[id.index] = .sink(sink)
    }

    /// The receiver of `completion`; the slot is freed after the operation's last. A
    /// completion for a slot that was freed since (it cannot happen: an operation ends
    /// once) has none.
    ///
    /// The caller delivers it once this access to the table has ended: a sink may start
    /// another operation.
    mutating func receiver(of completion: Completion) -> Receiver {
        let id = completion.operation
        guard id.index < receivers.count, generations[id.index] == id.generation else { return .none }
        guard !completion.more else { return receivers[id.index] }
        // Moved out, not copied: no retain of the receiver and release of the slot's.
        var receiver = Receiver.none
        swap(&receiver, &receivers[id.index])
        generations[id.index] &+= 1
        free.append(id.index)
        inFlight -= 1
        return receiver
    }
}

/// Takes the completions of an operation no task waits for (a multishot one, or a
/// write-behind), on the loop thread.
protocol CompletionSink: AnyObject {
    /// One completion; ``Completion/more`` is false for the operation's last.
    func receive(_ completion: Completion)
}
