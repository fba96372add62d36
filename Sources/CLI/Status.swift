import ArgumentParser
import FoundationEssentials
import ReleaseKit

/// `releasectl status [ID]`: one release in detail, or the latest ones.
struct Status: RunnableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one release in detail, or the latest releases.")

    @OptionGroup var spoolOptions: SpoolOptions
    @Argument(help: "The release id (default: the latest releases).") var id: String?
    @Flag(name: .long, help: "Print the record (or an array of records) as JSON.") var json = false

    func execute() async throws {
        let spool = spoolOptions.resolved
        guard let id else {
            try List.show(spool: spool, app: nil, limit: 20, json: json)
            if !json, Releases.all(spool).contains(where: { $0.state == .queued }), let notice = ClusterStatusCommand.databaseNotice(spool) {
                Output.line(notice)
            }
            return
        }
        guard let location = spool.locate(id) else { throw CLIError(2, "no release \(Masking.preview(id)) in \(spool.root)") }
        let record = Releases.record(for: location, id: id)
        if json {
            Output.line(JSONOutput.record(record))
        } else {
            Output.out(RecordText.detail(record))
            if record.state == .queued, let notice = ClusterStatusCommand.databaseNotice(spool) { Output.line(notice) }
        }
    }
}

/// Records for releases that have not finished, built from their requests.
enum Releases {
    static func record(for location: Spool.Location, id: String) -> ReleaseRecord {
        switch location {
        case .finished(let r):
            return r
        case .running(let request, let progress):
            if var p = progress { p.state = .running; return p }
            return pending(request, id: id, state: .running)
        case .queued(let request):
            return pending(request, id: id, state: .queued)
        }
    }

    static func pending(_ request: ReleaseRequest?, id: String, state: ReleaseState) -> ReleaseRecord {
        ReleaseRecord(id: id, app: request?.app, release: request?.release, phase: request?.phase ?? .default, state: state, directory: request?.directory,
                      submittedAt: request?.submittedAt, retryOf: request?.retryOf?.rawValue)
    }

    /// Every release the spool knows, newest first.
    static func all(_ spool: Spool) -> [ReleaseRecord] {
        var records = spool.finishedRecords()
        for id in spool.requestIDs(in: .running) {
            if let location = spool.locate(id), case .running = location { records.append(record(for: location, id: id)) }
        }
        for id in spool.requestIDs(in: .incoming) {
            if let location = spool.locate(id), case .queued = location { records.append(record(for: location, id: id)) }
        }
        return records.sorted { ($0.sortTime, $0.id) > ($1.sortTime, $1.id) }
    }
}
