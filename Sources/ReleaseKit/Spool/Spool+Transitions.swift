import FoundationEssentials
import Glibc
import ReleaseSupport
import SystemPackage

/// A moment inside a transition after which the daemon may die, leaving the spool half-way:
/// `Spool.recover()` turns the spool of each into exactly one final state for the release.
/// The tests of recovery stop a transition at each of them (`Spool.crashPoint`).
enum CrashPoint: CaseIterable, Sendable {
    /// The request is in `running/`; no task has started.
    case claimed
    /// The final record is written (fsynced) over the progress record, still in `running/`.
    case finishRecordRewritten
    /// The final record is in `done/`; the request still in `running/`.
    case finishRecordWritten
    /// The request is in `done/` too; its cancel marker is still there.
    case finishRequestMoved
    /// The rejection's record is in `rejected/`; the request still in `incoming/`.
    case rejectRecordWritten
    /// The cancelled release's record is in `done/`; the request still in `incoming/`.
    case cancelRecordWritten
    /// Recovery wrote an interrupted release's record; the request is still in `running/`.
    case recoveryRecordWritten
}

extension Spool {
    /// Claims a waiting request: `incoming/` → `running/`, durably, before any task starts.
    /// After a crash, a request found in `running/` may have started, so it is never re-run.
    public func claim(_ id: ReleaseID) throws(SpoolError) {
        try move(SpoolName("\(id).json"), from: .incoming, to: .running, as: "\(id).json")
        try stop(at: .claimed)
    }

    /// Records a running release's progress (`running/<id>.record.json`) for `status`, and for
    /// recovery to say which task was running. Not durable: a lost progress record costs only
    /// that detail, and recovery says so.
    ///
    /// The first write makes the file (atomically, as every spool file is made); later ones
    /// rewrite it in place — the whole record in one write(2) from its start, then cut to its
    /// length — so a release makes one file for its progress, not one per task (on ext4 each
    /// new file and each one replaced cost more than the write). A reader that catches a
    /// rewrite halfway reads again (`record(in:id:)`).
    public func recordProgress(_ record: ReleaseRecord) {
        let name = "\(record.id).record.json"
        let bytes = record.encoded()
        do throws(Errno) { try rewriteProgress(name, bytes, durable: false) } catch {
            try? writeAtomically(bytes, to: .running, name: name, durable: false)
        }
    }

    /// Rewrites `running/<name>` in place (a regular file, never a link): the whole of `bytes`
    /// from its start, cut to their length, and fsynced when `durable`.
    private func rewriteProgress(_ name: String, _ bytes: [UInt8], durable: Bool) throws(Errno) {
        let fd = try Syscalls.open(cPath(.running, name), O_WRONLY | O_NOFOLLOW | O_CLOEXEC)
        defer { Syscalls.close(fd) }
        guard try Syscalls.fstat(fd).st_mode & S_IFMT == S_IFREG else { throw Errno.invalidArgument }
        try Syscalls.writeAll(fd, bytes)
        guard ftruncate(fd, off_t(bytes.count)) == 0 else { throw Errno(rawValue: errno) }
        if durable { try Syscalls.fsync(fd) }
    }

    /// Makes a release's outcome durable: its record into `done/` (fsynced), then the request
    /// beside it (`done/` fsynced once for both); then its cancel marker goes. A crash in
    /// between leaves a record in `done/`, which recovery completes.
    ///
    /// The record is the progress record, rewritten in place with the outcome, fsynced and
    /// renamed into `done/`: one file made and none freed, rather than a temporary one made and
    /// the progress record freed. Until the rename the request is in `running/`, so a crash
    /// that cut the rewrite short finds a release that was running (recovery says interrupted,
    /// as before its record was written). Without a progress record to rewrite, a new file is
    /// made the usual way.
    ///
    /// `inPlace: false` writes the record as a new file instead, leaving the progress record
    /// whole until the request has moved: for a release whose outcome is pending in a cluster
    /// (`recordPending`), which a torn rewrite must never turn into "was running".
    public func finish(_ record: ReleaseRecord, inPlace: Bool = true) throws(SpoolError) {
        let id = record.id
        let name = "\(id).record.json"
        let bytes = record.encoded()
        var inDone = false
        if inPlace, (try? rewriteProgress(name, bytes, durable: true)) != nil {
            try stop(at: .finishRecordRewritten)
            inDone = (try? Syscalls.rename(cPath(.running, name), cPath(.done, name))) != nil
        }
        if !inDone {
            try writeAtomically(bytes, to: .done, name: name, syncFolder: false)
            remove(.running, name)
        }
        try stop(at: .finishRecordWritten)
        try move(SpoolName("\(id).json"), from: .running, to: .done, as: "\(id).json", replace: true)
        try stop(at: .finishRequestMoved)
        remove(.cancel, id)
    }

    /// Makes the outcome of a release whose tasks have ended durable as its progress record
    /// (`running/<id>.record.json`, a final state in it; written whole, fsynced), before a
    /// cluster is asked to commit it: a crash from here on leaves a release recovery does not
    /// call interrupted by itself (`recover(keepingPending:)`), since the cluster may already
    /// have taken its outcome; the cluster's coordinator settles it.
    public func recordPending(_ record: ReleaseRecord) throws(SpoolError) {
        try writeAtomically(record.encoded(), to: .running, name: "\(record.id).record.json")
    }

    /// Files a request that cannot be accepted: its record into `rejected/<stem>.record.json`,
    /// then the file itself to `rejected/<stem>.json`. With `durable: false` the two renames
    /// are not fsynced here; a caller filing many (a flood of junk) calls `sync(.rejected)`
    /// once after them — a crash before it at worst leaves a file in `incoming/`, rejected
    /// again (or completed by recovery) at the next start.
    public func reject(_ name: SpoolName, stem: String, record: ReleaseRecord, durable: Bool = true) throws(SpoolError) {
        try writeAtomically(record.encoded(), to: .rejected, name: "\(stem).record.json", durable: durable, syncFolder: false)
        try stop(at: .rejectRecordWritten)
        try move(name, from: .incoming, to: .rejected, as: "\(stem).json", durable: durable)
    }

    /// A name for a rejection in `rejected/` that is not taken yet: `base`, else `base.2`, ….
    public func freeRejectionStem(_ base: String) -> String {
        var stem = base
        var n = 1
        while exists(.rejected, "\(stem).json") || exists(.rejected, "\(stem).record.json") {
            n += 1
            stem = "\(base).\(n)"
        }
        return stem
    }

    /// Ends a release that did not run here — cancelled before it started, or (in a cluster)
    /// run by another node and followed: its record into `done/`, then the request from
    /// `incoming/` beside it, then any cancel marker goes.
    public func finishQueued(_ record: ReleaseRecord) throws(SpoolError) {
        let id = record.id
        try writeAtomically(record.encoded(), to: .done, name: "\(id).record.json", syncFolder: false)
        try stop(at: .cancelRecordWritten)
        try move(SpoolName("\(id).json"), from: .incoming, to: .done, as: "\(id).json", replace: true)
        remove(.cancel, id)
    }

    /// Removes a cancel marker (`cancel/<name>`) that was acted on or names nothing.
    public func removeCancelMarker(_ name: String) {
        remove(.cancel, name)
    }

    /// Removes a finished release: its request, its record and its log (retention).
    public func removeFinished(_ folder: Folder, stem: String) {
        remove(folder, "\(stem).record.json")
        remove(folder, "\(stem).json")
        remove(.logs, "\(stem).log")
    }

    /// Stops here, as if the daemon had died, when a test asked for it.
    func stop(at point: CrashPoint) throws(SpoolError) {
        if crashPoint == point { throw SpoolError(.simulatedCrash, path: root, errno: .interrupted, detail: "\(point)") }
    }
}
