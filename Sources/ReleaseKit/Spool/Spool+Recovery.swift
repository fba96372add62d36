import FoundationEssentials
import SystemPackage

extension Spool {
    /// What recovery found and did.
    public struct Recovery: Sendable {
        /// Releases that were running when the daemon died, now recorded `interrupted`.
        public var interrupted: [ReleaseRecord] = []
        /// Hand-overs cut short (a record written, its request not moved yet) completed.
        public var completed = 0
        /// Releases whose `interrupted` record could not be written (they stay in `running/`
        /// and are tried again at the next start).
        public var failed: [(id: String, error: SpoolError)] = []
        /// With `keepingPending`: releases whose tasks had ended, their outcome pending in the
        /// cluster (`recordPending`), left in `running/` for the coordinator to settle.
        public var pending: [ReleaseRecord] = []
    }

    /// Puts the spool in order at start, before anything new runs.
    ///
    /// A request still in `running/` was running when the daemon died: if its record reached
    /// `done/` the move is finished; otherwise it becomes `interrupted` — the task that was
    /// running `cancelled`, those after it `not-run` — and is never re-run by itself (a
    /// migration is not assumed idempotent; `releasectl retry` makes a new release). A
    /// request in `incoming/` whose final record is already in `done/` or `rejected/` is
    /// moved beside it. Progress records whose request is gone, and cancel markers of releases
    /// that ended, are removed. Every crash point
    /// of every transition (`CrashPoint`) ends here in exactly one final state.
    ///
    /// `keepingPending` (a node of a cluster): a release whose progress record holds a final
    /// state had finished its tasks and was having its outcome committed by the cluster, which
    /// may have taken it: it is left where it is, in `pending`, for the coordinator to settle
    /// with what the cluster says.
    public func recover(now: Date = Date(), keepingPending: Bool = false) -> Recovery {
        var outcome = Recovery()
        for id in requestIDs(in: .running) {
            let name = SpoolName("\(id).json")
            if exists(.done, "\(id).record.json") {
                try? move(name, from: .running, to: .done, as: "\(id).json", replace: true)
                remove(.running, "\(id).record.json")
                remove(.cancel, id)
                outcome.completed += 1
                continue
            }
            let progress = record(in: .running, id: id)
            if keepingPending, let progress, progress.state.isFinal {
                outcome.pending.append(progress)
                continue
            }
            let record = FinalRecord.interrupted(id: id, progress: progress, request: readRequest(.running, id), now: now)
            do {
                try writeAtomically(record.encoded(), to: .done, name: "\(id).record.json")
                try stop(at: .recoveryRecordWritten)
                try move(name, from: .running, to: .done, as: "\(id).json", replace: true)
            } catch {
                outcome.failed.append((id, error))
                continue
            }
            remove(.running, "\(id).record.json")
            remove(.cancel, id)
            outcome.interrupted.append(record)
        }
        for entry in entries(.running) where entry.string.hasSuffix(".record.json") {
            let id = String(entry.string.dropLast(".record.json".count))
            if !exists(.running, "\(id).json") { remove(.running, entry.string) }
        }
        // Cancel markers of releases that have ended.
        for entry in entries(.cancel) where exists(.done, "\(entry).record.json") || exists(.rejected, "\(entry).record.json") {
            remove(.cancel, entry.string)
        }
        for id in requestIDs(in: .incoming) {
            let name = SpoolName("\(id).json")
            for folder in [Folder.rejected, .done] where exists(folder, "\(id).record.json") && !exists(folder, "\(id).json") {
                try? move(name, from: .incoming, to: folder, as: "\(id).json")
                remove(.cancel, id)
                outcome.completed += 1
                break
            }
        }
        return outcome
    }
}
