/// An entry in a loop's run queue, and how to run it.
struct RunItem {
    /// What the entry runs.
    enum Work {
        /// A task's job, enqueued through the loop's task executor.
        case task(UnownedJob)
        /// An actor's job, enqueued through the loop's serial executor.
        case actor(UnownedJob)
        /// A closure handed to ``EventLoop/execute(_:)``.
        case closure(@Sendable () -> Void)
    }

    let work: Work
    /// For an entry handed over after its own loop stopped: that loop, retained until run.
    let stoppedOwner: Unmanaged<EventLoop>?

    init(_ job: UnownedJob, isActorJob: Bool) {
        self.init(isActorJob ? .actor(job) : .task(job))
    }

    init(_ work: Work, stoppedOwner: Unmanaged<EventLoop>? = nil) {
        self.work = work
        self.stoppedOwner = stoppedOwner
    }
}
