import ArgumentParser
import ReleaseKit

/// `releasectl wait ID`: follow a submitted release to its end.
struct Wait: RunnableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow a submitted release to its end and exit with its outcome (0/1/2/3, 4 on --timeout).")

    @OptionGroup var spoolOptions: SpoolOptions
    @Argument(help: "The release id.") var id: String
    @Option(name: .long, help: ArgumentHelp("Give up after this long (exit 4), e.g. 30m.", valueName: "duration"))
    var timeout: String?
    @Flag(name: .long, help: "Print the final record as JSON (streamed output goes to stderr).")
    var json = false

    func execute() async throws {
        let spool = spoolOptions.resolved
        guard spool.locate(id) != nil else { throw CLIError(2, "no release \(Masking.preview(id)) in \(spool.root)") }
        var options = WaitOptions()
        options.timeout = timeout
        let t = try options.parsedTimeout()
        try Spooling.followAndExit(id: id, spool: spool, timeout: t, json: json)
    }
}
