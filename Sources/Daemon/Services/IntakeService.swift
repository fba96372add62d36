import ServiceLifecycle

/// Takes arrivals in: whenever the scheduler has names waiting, it asks it to take them in a
/// slice at a time, so the watcher, cancels and finishing releases get the event loop in
/// between — a flood of files delays nobody but its owner (see `Arrivals`).
struct IntakeService: Service {
    let scheduler: Scheduler
    let work: AsyncStream<Void>

    func run() async throws {
        for await _ in work.cancelOnGracefulShutdown() {
            while await scheduler.takeIn() {
                await Task.yield()
            }
        }
    }
}
