import FoundationEssentials
import Logging
import ReleaseKit

/// Removes finished releases (request, record and log) older than `retention-days`, keeping
/// at least the newest `retention-keep` of each app however old they are.
enum Retention {
    struct Outcome: Equatable {
        var removed = 0
        var kept = 0
    }

    static func sweep(spool: Spool, days: Int, keep: Int, now: Date = Date(), logger: Logger) -> Outcome {
        let cutoff = now.addingTimeInterval(-Double(days) * 86_400)
        var byApp: [String: [(folder: Spool.Folder, stem: String, record: ReleaseRecord)]] = [:]
        for folder in [Spool.Folder.done, .rejected] {
            for entry in spool.entries(folder) where entry.string.hasSuffix(".record.json") {
                let stem = String(entry.string.dropLast(".record.json".count))
                guard let record = spool.record(in: folder, id: stem) else { continue }
                byApp[record.app ?? "", default: []].append((folder, stem, record))
            }
        }
        var outcome = Outcome()
        for (_, releases) in byApp {
            let newestFirst = releases.sorted { ($0.record.sortTime, $0.stem) > ($1.record.sortTime, $1.stem) }
            for (index, release) in newestFirst.enumerated() {
                let ended = release.record.finishedAt ?? release.record.sortTime
                guard index >= keep, ended < cutoff else { outcome.kept += 1; continue }
                spool.remove(release.folder, "\(release.stem).record.json")
                spool.remove(release.folder, "\(release.stem).json")
                spool.remove(.logs, "\(release.stem).log")
                outcome.removed += 1
            }
        }
        if outcome.removed > 0 {
            logger.notice("retention: removed \(outcome.removed) finished release(s) older than \(days) day(s), kept \(outcome.kept)")
        }
        return outcome
    }
}
