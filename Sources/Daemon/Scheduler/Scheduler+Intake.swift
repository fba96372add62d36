import FoundationEssentials
import Glibc
import Logging
import ReleaseKit
import SystemPackage

/// Names found in `incoming/`, waiting to be taken in, kept by the user that owns each file
/// and taken round-robin across users: a submitter that floods the spool with junk delays
/// its own requests, not anyone else's.
struct Arrivals {
    private var byOwner: [uid_t: [SpoolName]] = [:]
    private var heads: [uid_t: Int] = [:]
    private var owners: [uid_t] = []
    private var next = 0
    private var known: Set<SpoolName> = []

    /// A name found in `incoming/`, with its owner, and the release id it names if any.
    struct Found: Sendable {
        var name: SpoolName
        var owner: uid_t
        var id: ReleaseID?
    }

    /// Looks at names found in `incoming/`, off the event loop: hidden names and names gone
    /// already are left out; the rest get their owner (lstat). With `sorted`, in name order,
    /// so that a submitter's requests are taken in id order.
    static func look(_ names: [SpoolName], in spool: Spool, sorted: Bool = false) -> [Found] {
        var found: [Found] = []
        found.reserveCapacity(names.count)
        for name in names where !name.hasPrefix(".") {
            guard let st = spool.fileStatus(.incoming, name) else { continue }  // gone already
            found.append(Found(name: name, owner: st.st_uid, id: name.requestID))
        }
        if sorted { found.sort { $0.name.bytes.lexicographicallyPrecedes($1.name.bytes) } }
        return found
    }

    var isEmpty: Bool { known.isEmpty }
    var count: Int { known.count }
    func contains(_ name: SpoolName) -> Bool { known.contains(name) }

    /// Adds a name (once) for its owner.
    mutating func add(_ name: SpoolName, owner: uid_t) {
        guard known.insert(name).inserted else { return }
        if byOwner[owner] == nil { owners.append(owner) }
        byOwner[owner, default: []].append(name)
    }

    /// The next name, taking one of each owner's in turn.
    mutating func take() -> (name: SpoolName, owner: uid_t)? {
        while !owners.isEmpty {
            if next >= owners.count { next = 0 }
            let owner = owners[next]
            let head = heads[owner, default: 0]
            guard let names = byOwner[owner], head < names.count else {
                byOwner[owner] = nil
                heads[owner] = nil
                owners.remove(at: next)
                continue
            }
            heads[owner] = head + 1
            next += 1
            known.remove(names[head])
            return (names[head], owner)
        }
        return nil
    }
}

/// The rejected files each submitter has in `rejected/`, oldest first: past the limit, filing
/// a new rejection removes that submitter's oldest, so one submitter's junk neither fills the
/// disk nor makes `list` slow for everyone. (The request file keeps its owner when it is
/// moved there: it says whose a rejection is.)
struct RejectionLedger {
    private var byOwner: [uid_t: [String]] = [:]

    init(spool: Spool) {
        var found: [(owner: uid_t, time: Int, stem: String)] = []
        for entry in spool.entries(.rejected) where entry.hasSuffix(".json") && !entry.hasSuffix(".record.json") {
            guard let st = spool.fileStatus(.rejected, entry) else { continue }
            found.append((st.st_uid, Int(st.st_mtim.tv_sec), String(entry.string.dropLast(5))))
        }
        for item in found.sorted(by: { ($0.time, $0.stem) < ($1.time, $1.stem) }) {
            byOwner[item.owner, default: []].append(item.stem)
        }
    }

    /// Books a rejection of `owner`'s; returns the stems of that owner's to remove to stay
    /// within `limit`.
    mutating func filed(_ stem: String, owner: uid_t, limit: Int) -> [String] {
        var stems = byOwner[owner, default: []]
        stems.append(stem)
        let excess = max(0, stems.count - limit)
        let removed = Array(stems.prefix(excess))
        stems.removeFirst(excess)
        byOwner[owner] = stems
        return removed
    }
}

extension Scheduler {
    /// Files that appeared in `incoming/` (see `Arrivals.look`): each is noted for its owner,
    /// and the intake service takes them in (`nextIntake`, `settle`). Returns at once, so the watcher keeps
    /// reading.
    func arrived(_ found: [Arrivals.Found]) {
        perform(state.arrived(found), status: false)
    }

    /// Up to `limit` arrivals to take in, round-robin by owner, with the intake of the moment:
    /// the intake service evaluates them off the event loop (`Intake.evaluate`) and hands the
    /// results back to `settle`. Until then they are in flight: a cancel for one waits.
    func nextIntake(limit: Int = 64) -> (batch: [(name: SpoolName, owner: uid_t)], intake: Intake, generation: Int) {
        (state.takeIntake(limit: limit), intake, intakeGeneration)
    }

    /// Acts on what intake made of a batch: queues what was admitted, files what was not;
    /// rejections are filed with one fsync of `rejected/` at the end. An admission made with a
    /// configuration since replaced is not kept (the release is validated again at start).
    /// Returns whether more arrivals wait.
    @discardableResult
    func settle(_ results: [(name: SpoolName, owner: uid_t, evaluation: Intake.Evaluation)], generation: Int) -> Bool {
        var filed = false
        for (name, owner, evaluation) in results {
            state.settled(name)
            filed = settle(name, owner: owner, evaluation, current: generation == intakeGeneration) || filed
        }
        if filed { try? context.spool.sync(.rejected) }
        reportRejections()
        perform(state.dispatch())
        return !state.arrivals.isEmpty
    }

    /// Acts on one file; returns whether a rejection was filed.
    private func settle(_ name: SpoolName, owner: uid_t, _ evaluation: Intake.Evaluation, current: Bool) -> Bool {
        let spool = context.spool
        let request: ReleaseRequest
        switch evaluation {
        case .gone:
            return false  // already gone (moved by an earlier event)
        case .unreadable(let rejection):
            return file(name, owner: owner, reason: rejection.reason, partial: rejection.partial, request: nil, durable: false)
        case .invalid(let read, _), .admitted(let read, _):
            request = read.request
        }
        let id = request.id.rawValue
        if name == SpoolName("\(id).json"), state.knows(request.id) {
            // The very file of a release already queued here, read a second time: not a
            // second submission (filing it would take the queued release's request away).
            return false
        }
        if state.knows(request.id) || spool.exists(.running, "\(id).json")
            || spool.exists(.done, "\(id).record.json") || spool.exists(.rejected, "\(id).record.json") {
            return file(name, owner: owner, reason: RejectReason(.duplicateID, "duplicate id: release \(id) already exists"),
                        partial: .init(id: id, app: request.app, release: request.release, submittedAt: request.submittedAt),
                        request: request, stem: "\(id).duplicate", durable: false)
        }
        // Cancelled before the daemon picked it up (e.g. while no daemon ran), or queued.
        let entry = intake.entry(for: request)
        if spool.exists(.cancel, id) {
            perform(state.takenIn(request, entry: entry, admitted: false, cancelMarked: true), status: false)
            return false
        }
        switch evaluation {
        case .invalid(_, let reason):
            return file(name, owner: owner, reason: reason, partial: .init(), request: request, durable: false)
        case .admitted(_, let admission):
            if let reason = phaseProblem(request, entry: entry) {
                return file(name, owner: owner, reason: reason, partial: .init(), request: request, durable: false)
            }
            perform(state.takenIn(request, entry: entry, admitted: true, cancelMarked: false), status: false)
            context.coordinator.admitted(entry)
            if current { keep(admission) }
            context.logger.info("queued \(request.app) \(request.release)", metadata: .release(request, state: "queued"))
            return false
        case .gone, .unreadable:
            return false
        }
    }

    /// Why a postdeploy cannot be accepted here: its deploy's predeploy waits or runs here
    /// still, or ended here other than succeeded, or (on a single host) never ran here. In a
    /// cluster a predeploy this node did not take part in is the cluster's to judge (at
    /// registration). On a single host a deploy is its app and release label.
    func phaseProblem(_ request: ReleaseRequest, entry: ReleaseQueue.Entry) -> RejectReason? {
        guard request.phase == .postdeploy else { return nil }
        let clustered = context.coordinator.node != nil
        let key = clustered ? request.deployKeyOrDefault : ReleaseRequest.defaultDeployKey(app: request.app, release: request.release)
        // (One whose record is in done/ has ended: its slot is held only while its container
        // is taken down, after its caller was told.)
        if let pending = state.queue.first(where: { other in
            other.phase == .predeploy && other.app == request.app
                && (clustered ? other.deployKey == key : other.release == request.release)
                && !context.spool.exists(.done, "\(other.id).record.json")
        }) {
            let where_ = state.queue.isRunning(pending.id) ? "runs" : "waits"
            return RejectReason(.phase, "the predeploy of \(request.app) \(request.release) (\(pending.id)) still \(where_) here: a postdeploy runs only after its deploy's predeploy succeeded")
        }
        guard let (problem, unknown) = context.history.read({ $0.predeployProblem(app: request.app, release: request.release, key: key) }) else {
            return nil
        }
        if unknown && clustered { return nil }
        return RejectReason(.phase, problem)
    }

    /// Files a rejection: the record, then the request, into `rejected/`; the submitter's
    /// oldest rejections past `rejected-limit` go. Returns whether it was filed (a file that
    /// cannot be filed — disk full — stays in `incoming/` and is looked at again later).
    @discardableResult
    func file(_ name: SpoolName, owner: uid_t?, reason: RejectReason, partial: ReleaseRequest.Partial, request: ReleaseRequest?,
              stem base: String? = nil, durable: Bool = true) -> Bool {
        let spool = context.spool
        let stem = spool.freeRejectionStem(base ?? request?.id.rawValue ?? Intake.safeStem(name.string))
        let record = FinalRecord.rejected(stem: stem, reason: reason, partial: partial, request: request)
        do {
            try spool.reject(name, stem: stem, record: record, durable: durable)
        } catch {
            context.logger.error("cannot file the rejected request \(Masking.preview(name.string)): \(error)")
            intakeToRetry = true
            return false
        }
        let submitter = owner ?? spool.fileStatus(.rejected, SpoolName("\(stem).json"))?.st_uid ?? 0
        for old in rejections.filed(stem, owner: submitter, limit: config.rejectedLimit) {
            spool.removeFinished(.rejected, stem: old)
            rejectionCounts.removedOld += 1
        }
        rejectionCounts.byOwner[submitter, default: 0] += 1
        if rejectionCounts.byOwner[submitter]! <= RejectionCounts.loggedPerOwner {
            context.logger.error("rejected \(Masking.preview(name.string)): \(record.reason ?? "")",
                                 metadata: .release(record, messageID: MessageID.releaseRejected))
        }
        state.counted()
        book(record)
        return true
    }

    /// Says how many rejections were not logged one by one (a flood) and how many old ones
    /// were removed, once a minute at most.
    private func reportRejections() {
        let now = ContinuousClock.now
        guard now - rejectionCounts.since >= .seconds(60) || state.arrivals.isEmpty else { return }
        for (owner, count) in rejectionCounts.byOwner.sorted(by: { $0.key < $1.key }) where count > RejectionCounts.loggedPerOwner {
            context.logger.error("rejected \(count - RejectionCounts.loggedPerOwner) more file(s) of uid \(owner) (only the first \(RejectionCounts.loggedPerOwner) a minute are logged one by one)")
        }
        if rejectionCounts.removedOld > 0 {
            context.logger.notice("removed \(rejectionCounts.removedOld) old rejection(s) of submitters over rejected-limit (\(config.rejectedLimit))")
        }
        rejectionCounts = RejectionCounts()
    }

    /// Whether a rejection could not be filed earlier, and `incoming/` is to be looked at
    /// again (the flag is cleared).
    func takeRetryRequest() -> Bool {
        defer { intakeToRetry = false }
        return intakeToRetry
    }

    // MARK: Cancel

    /// Files that appeared in `cancel/`.
    func processCancels(_ names: [SpoolName]) {
        let spool = context.spool
        var actions: [SchedulerState.Action] = []
        for name in names {
            guard let id = ReleaseID(name.string) else {
                spool.removeCancelMarker(name.string)
                continue
            }
            let (decided, markerDone) = state.cancel(id)
            actions += decided
            if markerDone { spool.removeCancelMarker(name.string) }
        }
        perform(actions)
    }

    /// Records a waiting release cancelled before it started (`cancelled`, in `done/`); in a
    /// cluster the cancel is the deploy's, on every node.
    func cancelQueued(_ request: ReleaseRequest) {
        let record = FinalRecord.cancelledBeforeStart(request)
        do {
            try context.spool.finishQueued(record)
        } catch {
            context.logger.error("cannot record the cancellation of \(request.id): \(error)")
        }
        context.logger.notice("cancelled \(request.app) \(request.release) before it started",
                              metadata: .release(request, state: "cancelled", messageID: MessageID.releaseCancelled))
        state.counted()
        book(record)
        // In a cluster a cancel is the deploy's, on every node.
        let coordinator = context.coordinator, entry = intake.entry(for: request)
        Task { await coordinator.ended(entry, record: record) }
    }

}

/// Rejections since the last report, by owner.
struct RejectionCounts {
    static let loggedPerOwner = 20
    var byOwner: [uid_t: Int] = [:]
    var removedOld = 0
    var since = ContinuousClock.now
}
