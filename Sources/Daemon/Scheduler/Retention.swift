import FoundationEssentials
import Logging
import ReleaseKit

/// Removes finished releases (request, record and log) older than `retention-days`, keeping
/// at least the newest `retention-keep` of each app however old they are. Only releases that
/// were accepted (`done/`) count for the keep: a rejection — junk above all, which names any
/// app it likes and any date — goes by age alone, so it can never push an app's real records
/// out. (Rejections are also bounded per submitter: `rejected-limit`.) An app's newest
/// succeeded release of each phase is always kept: it is what says the app has been deployed
/// (first-deploy tasks, `DeployHistory`).
enum Retention {
    struct Outcome: Equatable {
        var removed = 0
        var kept = 0
    }

    static func sweep(spool: Spool, days: Int, keep: Int, now: Date = Date(), logger: Logger) -> Outcome {
        let cutoff = now.addingTimeInterval(-Double(days) * 86_400)
        var outcome = Outcome()
        var byApp: [String: [(stem: String, record: ReleaseRecord)]] = [:]
        for (folder, stem, record) in records(in: spool) {
            guard folder == .done else {
                // When it was rejected: the daemon's clock, not the file's word.
                if (record.finishedAt ?? .distantPast) < cutoff {
                    spool.removeFinished(.rejected, stem: stem)
                    outcome.removed += 1
                } else {
                    outcome.kept += 1
                }
                continue
            }
            byApp[record.app ?? "", default: []].append((stem, record))
        }
        for (_, releases) in byApp {
            let newestFirst = releases.sorted { ($0.record.sortTime, $0.stem) > ($1.record.sortTime, $1.stem) }
            var deployed: Set<ReleasePhase> = []
            for (index, release) in newestFirst.enumerated() {
                let ended = release.record.finishedAt ?? release.record.sortTime
                let lastDeployed = release.record.state == .succeeded && deployed.insert(release.record.phase).inserted
                guard index >= keep, ended < cutoff, !lastDeployed else { outcome.kept += 1; continue }
                spool.removeFinished(.done, stem: release.stem)
                outcome.removed += 1
            }
        }
        if outcome.removed > 0 {
            logger.notice("retention: removed \(outcome.removed) finished release(s) older than \(days) day(s), kept \(outcome.kept)")
        }
        return outcome
    }

    private static func records(in spool: Spool) -> [(Spool.Folder, String, ReleaseRecord)] {
        var result: [(Spool.Folder, String, ReleaseRecord)] = []
        for folder in [Spool.Folder.done, .rejected] {
            for entry in spool.entries(folder) where entry.string.hasSuffix(".record.json") {
                let stem = String(entry.string.dropLast(".record.json".count))
                if let record = spool.record(in: folder, id: stem) { result.append((folder, stem, record)) }
            }
        }
        return result
    }
}
