import ReleaseKit
import ReleaseSupport
import ServiceLifecycle

/// Takes arrivals in: whenever the scheduler has names waiting, it takes a batch of them
/// (round-robin by submitter: a flood of files delays nobody but its owner, see `Arrivals`),
/// reads and validates them on a thread of its own (`Intake.evaluate`: files, the app's
/// directory, an image) and hands the results back — so the event loop never waits for a
/// file system or an engine, and the watcher, cancels and finishing releases get it between
/// batches.
struct IntakeService: Service {
    let scheduler: Scheduler
    let spool: Spool
    let work: AsyncStream<Void>

    func run() async throws {
        for await _ in work.cancelOnGracefulShutdown() {
            while true {
                let (batch, intake, generation) = await scheduler.nextIntake()
                if batch.isEmpty { break }
                let spool = spool
                let results = await BlockingCall.run { batch.map { ($0.name, $0.owner, intake.evaluate($0.name, spool: spool)) } }
                await scheduler.settle(results, generation: generation)
            }
        }
    }
}
