import ArgumentParser
import ReleaseKit

/// `releasectl`: submit releases to `released` and follow them.
struct Releasectl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "releasectl",
        abstract: "Submit app releases to released and follow them.",
        discussion: """
            A PaaS release hook runs `releasectl submit --wait`: it spools a request, streams the \
            release tasks' output, and exits 0 when the release succeeded, 1 when it failed, 2 when \
            it was rejected, 3 when it was cancelled or interrupted, 4 when --timeout passed.
            """,
        subcommands: [Submit.self, Wait.self, Status.self, List.self, Logs.self, Cancel.self, Retry.self,
                      Plugins.self, Plan.self, Cluster.self])
}

/// A subcommand whose work is asynchronous. (main.swift calls `execute()`, which avoids
/// swift-argument-parser picking its synchronous `run()`.)
protocol RunnableCommand: ParsableCommand {
    func execute() async throws
}

/// A failure with the exit status it should end the process with.
struct CLIError: Error {
    var code: Int32
    var message: String

    init(_ code: Int32, _ message: String) {
        self.code = code
        self.message = message
    }

    static func usage(_ message: String) -> CLIError { CLIError(2, message) }
}

/// `--spool DIR`, shared by every command.
struct SpoolOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The spool folder (default: $RELEASECTL_SPOOL or /var/lib/releasectl).", valueName: "dir"))
    var spool: String?

    var resolved: Spool { Spool.resolve(option: spool) }
}
