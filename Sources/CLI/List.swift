import ArgumentParser
import ReleaseKit

/// `releasectl list`: the latest releases, newest first.
struct List: RunnableCommand {
    static let configuration = CommandConfiguration(abstract: "List releases, newest first.")

    @OptionGroup var spoolOptions: SpoolOptions
    @Option(name: .long, help: ArgumentHelp("Only this app.", valueName: "name")) var app: String?
    @Option(name: .long, help: "How many (default 20).") var limit: Int = 20
    @Flag(name: .long, help: "Print an array of records as JSON.") var json = false

    func validate() throws {
        if limit < 1 { throw ValidationError("--limit must be at least 1") }
        if let app, !Syntax.isValidAppName(app) { throw ValidationError("--app \(Masking.preview(app)) is not a valid app name") }
    }

    func execute() async throws {
        try Self.show(spool: spoolOptions.resolved, app: app, limit: limit, json: json)
    }

    static func show(spool: Spool, app: String?, limit: Int, json: Bool) throws {
        var records = Releases.all(spool)
        if let app { records = records.filter { $0.app == app } }
        records = Array(records.prefix(limit))
        if json {
            Output.line(JSONOutput.records(records))
            return
        }
        if records.isEmpty {
            Output.line("no releases in \(spool.root)")
            return
        }
        Output.out(Output.table([["ID", "APP", "RELEASE", "PHASE", "STATE", "WHEN", "TOOK"]] + records.map(RecordText.row)))
    }
}
