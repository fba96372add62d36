import ArgumentParser
import ReleaseKit

/// `releasectl retry ID`: submit a finished release's request again as a new release.
struct Retry: RunnableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit a finished release again (same app, directory, env and tasks) as a new release.")

    @OptionGroup var spoolOptions: SpoolOptions
    @Argument(help: "The id of the finished release.") var id: String
    @OptionGroup var waitOptions: WaitOptions

    func execute() async throws {
        let spool = spoolOptions.resolved
        guard let location = spool.locate(id) else { throw CLIError(2, "no release \(Masking.preview(id)) in \(spool.root)") }
        guard case .finished = location else {
            throw CLIError(2, "\(id) has not finished yet; only a finished release can be retried")
        }
        guard let old = spool.finishedRequest(id) else {
            throw CLIError(2, "the request of \(id) is not readable (a rejected request that was not valid cannot be retried)")
        }
        // A predeploy retry is a new deploy key: with a cluster, it runs again rather than
        // getting the outcome of the deploy it retries. A postdeploy retry keeps its deploy's
        // key (its predeploy is that key's) and is a run of its own under it.
        let newID = ReleaseID.generate()
        let request = ReleaseRequest(id: newID, app: old.app, release: old.release, directory: old.directory,
                                     image: old.image, env: old.env, tasks: old.tasks, retryOf: old.id,
                                     deployKey: old.phase == .postdeploy ? old.deployKey : "retry-\(newID.rawValue)", phase: old.phase)
        try Spooling.submitAndReport(request, spool: spool, wait: waitOptions)
    }
}
