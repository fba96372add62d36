import FoundationEssentials
import Glibc
import Logging
import ReleaseKit
import SystemPackage

/// Puts the spool in order at start, before anything new runs.
///
/// A request still in `running/` was running when the daemon died: if its record reached
/// `done/` the move is finished; otherwise it becomes `interrupted` and is never re-run by
/// itself (migrations are not assumed idempotent; `releasectl retry` makes a new release).
/// Hand-overs cut short between writing a record and moving the request are completed.
enum Recovery {
    struct Outcome {
        var interrupted: [ReleaseRecord] = []
        var completed = 0
    }

    static func run(spool: Spool, logger: Logger) -> Outcome {
        var outcome = Outcome()
        for id in spool.requestIDs(in: .running) {
            let name = FilePath.Component("\(id).json")!
            if spool.exists(spool.recordPath(.done, id)) {
                try? spool.move(name, from: .running, to: .done, as: "\(id).json", replace: true)
                spool.remove(.running, "\(id).record.json")
                outcome.completed += 1
                continue
            }
            let progress = spool.record(in: .running, id: id)
            let request = spool.readRequest(spool.requestPath(.running, id))
            var record = progress ?? ReleaseRecord(
                id: id, app: request?.app, release: request?.release, state: .running, directory: request?.directory,
                submittedAt: request?.submittedAt, retryOf: request?.retryOf?.rawValue)
            record.state = .interrupted
            record.reason = "interrupted: the daemon stopped while the release ran; it is not re-run by itself (releasectl retry \(id))"
            for i in record.tasks.indices {
                switch record.tasks[i].state {
                case .running:
                    record.tasks[i].state = .cancelled
                    record.tasks[i].reason = "interrupted while running"
                case .pending:
                    // Progress is written without fsync: after a power loss a task recorded as
                    // pending may in fact have started.
                    record.tasks[i].state = .notRun
                    record.tasks[i].reason = "the release was interrupted (not known to have started)"
                default: break
                }
            }
            record.finishedAt = Date()
            if let startedAt = record.startedAt {
                record.durationMs = Int64(record.finishedAt!.timeIntervalSince(startedAt) * 1000)
            }
            do {
                try spool.writeAtomically(record.encoded(), to: .done, name: "\(id).record.json")
                try spool.move(name, from: .running, to: .done, as: "\(id).json", replace: true)
            } catch {
                logger.critical("cannot record the interrupted release \(id): \(error)")
                continue
            }
            spool.remove(.running, "\(id).record.json")
            spool.remove(.cancel, id)
            outcome.interrupted.append(record)
            logger.warning("release interrupted: \(record.app ?? "?") \(record.release ?? "?") was running when the daemon stopped", metadata: [
                "release.id": "\(id)", "release.app": "\(record.app ?? "")", "release.name": "\(record.release ?? "")",
                "release.state": "interrupted", "message.id": "\(MessageID.releaseInterrupted)",
            ])
        }
        // Progress records whose request is gone.
        for entry in spool.entries(.running) where entry.string.hasSuffix(".record.json") {
            let id = String(entry.string.dropLast(".record.json".count))
            if !spool.exists(spool.requestPath(.running, id)) { spool.remove(.running, entry.string) }
        }
        // Requests whose final record was written but which were not moved yet.
        for id in spool.requestIDs(in: .incoming) {
            let name = FilePath.Component("\(id).json")!
            if spool.exists(spool.recordPath(.rejected, id)), !spool.exists(spool.requestPath(.rejected, id)) {
                try? spool.move(name, from: .incoming, to: .rejected, as: "\(id).json")
                outcome.completed += 1
            } else if spool.exists(spool.recordPath(.done, id)), !spool.exists(spool.requestPath(.done, id)) {
                try? spool.move(name, from: .incoming, to: .done, as: "\(id).json")
                outcome.completed += 1
            }
        }
        // Temporary files of writes cut short: a submitter's removed with its own credentials.
        spool.removeLeftovers { uid, gid in FileCredentials(uid: uid, gid: gid, groups: []) }
        return outcome
    }
}
