import ArgumentParser
import Glibc
import ReleaseKit

/// `releasectl logs ID [--follow]`: a release's task output.
struct Logs: RunnableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a release's task output; --follow keeps printing until it ends.")

    @OptionGroup var spoolOptions: SpoolOptions
    @Argument(help: "The release id.") var id: String
    @Flag(name: .shortAndLong, help: "Keep printing as the release runs, until it ends.") var follow = false

    func execute() async throws {
        let spool = spoolOptions.resolved
        guard let location = spool.locate(id) else { throw CLIError(2, "no release \(Masking.preview(id)) in \(spool.root)") }
        if follow {
            _ = Follower(spool: spool, id: id, outputFD: STDOUT_FILENO, streamLog: true).follow(timeout: nil)
            return
        }
        // Streamed, not read whole: a log can be gigabytes.
        if Follower(spool: spool, id: id, outputFD: STDOUT_FILENO, streamLog: true).copyLog() {
            return
        } else if case .finished(let r) = location, r.state == .rejected {
            Output.line("rejected: \(r.reason ?? "")")
        }
    }
}
