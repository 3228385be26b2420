/// A job in a loop's run queue, and how to run it.
struct RunItem {
    let job: UnownedJob
    /// Enqueued through the loop's serial executor (an actor's job), not its task executor.
    let isActorJob: Bool
    /// For a job handed over after its own loop stopped: that loop, retained until run.
    let stoppedOwner: Unmanaged<EventLoop>?

    init(_ job: UnownedJob, isActorJob: Bool, stoppedOwner: Unmanaged<EventLoop>? = nil) {
        self.job = job
        self.isActorJob = isActorJob
        self.stoppedOwner = stoppedOwner
    }
}
