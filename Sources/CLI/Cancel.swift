import ArgumentParser
import Glibc
import ReleaseKit
import ReleaseWatcher

/// `releasectl cancel ID`: cancel a queued or running release.
struct Cancel: RunnableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cancel a queued or running release.",
        discussion: """
            A queued release is cancelled without running; a running one has its tasks' processes \
            terminated (SIGTERM, then SIGKILL after the kill grace). Waits up to 5 s for the outcome. \
            Exits 0 when the release is (now) cancelled, 1 when it had already finished otherwise, \
            2 for an unknown id.
            """)

    @OptionGroup var spoolOptions: SpoolOptions
    @Argument(help: "The release id.") var id: String

    func execute() async throws {
        let spool = spoolOptions.resolved
        guard let location = spool.locate(id), let releaseID = ReleaseID(id) else {
            throw CLIError(2, "no release \(Masking.preview(id)) in \(spool.root)")
        }
        if case .finished(let r) = location {
            if r.state == .cancelled {
                Output.line("\(id) is already cancelled")
                return
            }
            throw CLIError(1, "\(id) already finished: \(r.state.rawValue)")
        }
        do { try spool.requestCancel(releaseID) } catch { throw CLIError(2, "cannot request the cancel: \(error)") }
        guard SpoolLock.isHeld(spool) else {
            Output.line("cancel requested; no released is running on \(spool.root), it will cancel \(id) before running anything when it starts")
            return
        }
        let watcher = try? DirectoryWatcher(folders: [spool.path(.done)])
        let clock = ContinuousClock()
        let until = clock.now + .seconds(5)
        while clock.now < until {
            if let r = spool.record(in: .done, id: id) {
                if r.state == .cancelled {
                    Output.line("\(id) cancelled")
                    return
                }
                throw CLIError(1, "\(id) finished before the cancel took effect: \(r.state.rawValue)")
            }
            _ = watcher?.next(timeout: .milliseconds(200))
        }
        Output.line("cancel requested; \(id) is still stopping (its processes get SIGTERM, then SIGKILL after the kill grace)")
    }
}
