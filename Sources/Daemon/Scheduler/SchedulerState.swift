import Glibc
import ReleaseKit

/// The scheduler's decisions, as a state machine (postgres-nio's `PoolStateMachine` style): the
/// names waiting to be taken in (`Arrivals`) and those being taken in, the waiting releases
/// (`ReleaseQueue`), the releases let start and how far each got, and whether the daemon still
/// starts any. Each event returns the actions the `Scheduler` actor performs — start a
/// release, stop one, cancel a waiting one, try again later, wake the intake — so that it does
/// no I/O, holds no clock and needs no daemon to be tested.
struct SchedulerState: Sendable {
    /// A release let start: `claimed` once its request is in `running/` (or it follows another
    /// node's run), with the progress the status line shows.
    struct Started: Sendable, Equatable {
        var entry: ReleaseQueue.Entry
        var claimed = false
        var progress: String?
    }

    /// What the actor does.
    enum Action: Sendable, Equatable {
        /// Start the release: its admission (cached, or read and validated again), its job.
        case start(ReleaseQueue.Entry)
        /// Stop a started release.
        case stop(ReleaseID, StopReason)
        /// Record a waiting release cancelled before it started.
        case cancelQueued(ReleaseQueue.Entry)
        /// Record a release cancelled before it started, its request in hand (taken in with its
        /// cancel marker there, or let start but cancelled before its claim).
        case cancelNotStarted(ReleaseRequest)
        /// Ask the coordinator again in a second (or sooner, when the cluster changes).
        case retryLater
        /// Take the waiting arrivals in (the intake service).
        case takeIn
        /// Wake whoever waits for nothing to run (a shutdown).
        case nothingRuns
    }

    private(set) var queue = ReleaseQueue()
    private(set) var started: [ReleaseID: Started] = [:]
    private(set) var arrivals = Arrivals()
    /// Names taken from `arrivals` whose evaluation has not been settled yet.
    private(set) var inFlight: Set<SpoolName> = []
    private(set) var accepting = true
    /// Why the coordinator last said not now (shown until it says yes).
    private(set) var waitingFor: String?
    private var retryScheduled = false
    /// Releases finished (and rejections filed) since start.
    private(set) var finishedCount = 0
    var maxParallel: Int

    init(maxParallel: Int) { self.maxParallel = maxParallel }

    // MARK: Arrivals and intake

    /// Names found in `incoming/`: each not known already is noted for its owner.
    mutating func arrived(_ found: [Arrivals.Found]) -> [Action] {
        for item in found {
            // Seen again (a rescan after an overflow lists what the events also named): one
            // waiting, running, or being taken in now is not taken in twice.
            if let id = item.id, knows(id) { continue }
            if inFlight.contains(item.name) { continue }
            arrivals.add(item.name, owner: item.owner)
        }
        return arrivals.isEmpty ? [] : [.takeIn]
    }

    /// Up to `limit` arrivals to evaluate, round-robin by owner; in flight until settled.
    mutating func takeIntake(limit: Int) -> [(name: SpoolName, owner: uid_t)] {
        var batch: [(name: SpoolName, owner: uid_t)] = []
        while batch.count < limit, let next = arrivals.take() {
            batch.append(next)
            inFlight.insert(next.name)
        }
        return batch
    }

    /// The evaluation of an arrival is settled (whatever came of it).
    mutating func settled(_ name: SpoolName) { inFlight.remove(name) }

    /// Whether a name is waiting to be taken in or being taken in (a cancel for it waits).
    func isArriving(_ name: SpoolName) -> Bool { arrivals.contains(name) || inFlight.contains(name) }

    /// An admitted request waits in the queue, in id order within its serial key.
    mutating func admitted(_ entry: ReleaseQueue.Entry) { queue.enqueue(entry) }

    /// Whether a release of this id waits or was let start here.
    func knows(_ id: ReleaseID) -> Bool { queue.isWaiting(id) || started[id] != nil }


    // MARK: Dispatch

    /// Lets releases start as far as the queue allows (none once the daemon stops accepting).
    mutating func dispatch() -> [Action] {
        guard accepting else { return [] }
        var actions: [Action] = []
        while true {
            let entries = queue.start(maxParallel: maxParallel)
            if entries.isEmpty { return actions }
            for entry in entries {
                started[entry.id] = Started(entry: entry)
                actions.append(.start(entry))
            }
        }
    }

    /// A release let start could not start after all (its file is gone, or it is no longer
    /// valid: the actor files what it must, which counts it) or was refused by the coordinator.
    mutating func dropped(_ id: ReleaseID) -> [Action] {
        started[id] = nil
        queue.ended(id)
        return dispatch() + idle()
    }

    /// The coordinator said not now: the release waits again at the head of its key — or
    /// behind `first`, the deploy key the cluster runs first — and is asked about again once
    /// (in a second, or when the cluster changes: `nudged`). Returns the actions, and whether
    /// the reason is new (worth saying).
    mutating func deferred(_ id: ReleaseID, reason: String, first: String?) -> (actions: [Action], newReason: Bool) {
        guard let release = started.removeValue(forKey: id) else { return ([], false) }
        queue.putBack(id)
        // The cluster's order wins over this node's (ids made on other hosts, requests that
        // reached the nodes in another order).
        if let first { queue.promote(deployKey: first, serialKey: release.entry.serialKey) }
        let newReason = waitingFor != reason
        waitingFor = reason
        var actions = idle()
        if !retryScheduled {
            retryScheduled = true
            actions.append(.retryLater)
        }
        return (actions, newReason)
    }

    /// Whatever the coordinator waits on may have changed: try again.
    mutating func nudged() -> [Action] {
        retryScheduled = false
        return dispatch()
    }

    /// The release runs (its request is in `running/`, or it follows another node's run).
    mutating func claimed(_ id: ReleaseID) {
        started[id]?.claimed = true
        waitingFor = nil
    }

    /// How far a started release got, for the status line (a late update is ignored).
    mutating func progress(_ id: ReleaseID, _ text: String) {
        if started[id] != nil { started[id]?.progress = text }
    }

    /// A started release ended (`counted`: with a final record), or never started after all.
    mutating func finished(_ id: ReleaseID, counted: Bool) -> [Action] {
        started[id] = nil
        queue.ended(id)
        if counted { finishedCount += 1 }
        return dispatch() + idle()
    }

    /// A release finished outside the event loop (recovery), or a rejection filed.
    mutating func counted() { finishedCount += 1 }

    // MARK: Cancel

    // What a cancel does, at each stage of a release: the one place that decides it. (The
    // record is `FinalRecord.cancelledBeforeStart`'s or the runner's; in a cluster, the
    // coordinator tells the other nodes of a deploy's cancel.)

    /// `releasectl cancel`'s marker: a started release is stopped; a waiting one leaves the
    /// queue and is recorded cancelled; one still being taken in waits (its marker stays, and
    /// `takenIn` cancels it). Returns the actions and whether the cancel marker has served.
    mutating func cancel(_ id: ReleaseID) -> (actions: [Action], markerDone: Bool) {
        if started[id] != nil { return ([.stop(id, .cancelled)], false) }  // the marker goes when it ends
        if isArriving(SpoolName("\(id).json")) { return ([], false) }
        guard let entry = queue.remove(id) else { return ([], true) }
        return ([.cancelQueued(entry)] + dispatch(), true)
    }

    /// A request taken in whose cancel marker is there already (cancelled before the daemon
    /// picked it up, or while it was being taken in): recorded cancelled, never queued —
    /// whether or not it was valid. One without a marker and admitted waits in the queue.
    mutating func takenIn(_ request: ReleaseRequest, entry: ReleaseQueue.Entry, admitted: Bool, cancelMarked: Bool) -> [Action] {
        if cancelMarked { return [.cancelNotStarted(request)] }
        if admitted { self.admitted(entry) }
        return []
    }

    /// A release let start was cancelled before it could claim its request (the claim was
    /// being retried): it never started, and is recorded cancelled.
    mutating func cancelledBeforeClaim(_ request: ReleaseRequest) -> [Action] {
        guard started.removeValue(forKey: request.id) != nil else { return [] }
        queue.ended(request.id)
        return [.cancelNotStarted(request)] + dispatch() + idle()
    }

    // MARK: Shutdown

    /// Stops starting releases; waiting ones stay in `incoming/` for the next start.
    mutating func stopAccepting() { accepting = false }

    /// Every started release, stopped for the shutdown.
    func interruptAll() -> [Action] { started.keys.sorted { $0.rawValue < $1.rawValue }.map { .stop($0, .shutdown) } }

    var runningCount: Int { started.count }

    private func idle() -> [Action] { started.isEmpty ? [.nothingRuns] : [] }

    // MARK: Status

    /// The status line systemd shows (`STATUS=`): the running releases with their progress,
    /// how many wait (and why, when the coordinator said not now), or idle.
    var statusText: String {
        Self.statusText(running: started.values.map { ($0.entry, $0.progress, $0.claimed) }, waiting: queue.waitingCount,
                        arriving: arrivals.count, finished: finishedCount, accepting: accepting, waitingFor: waitingFor)
    }

    static func statusText(running: [(entry: ReleaseQueue.Entry, progress: String?, claimed: Bool)], waiting: Int,
                           arriving: Int, finished: Int, accepting: Bool, waitingFor: String? = nil) -> String {
        let queued = waiting + arriving
        let why = waitingFor.map { " (\($0))" } ?? ""
        if !running.isEmpty {
            let parts = running.sorted { $0.entry.serialKey < $1.entry.serialKey }.map { r in
                r.progress ?? "\(r.entry.app) \(r.entry.release): starting"
            }
            return parts.joined(separator: "; ") + (queued == 0 ? "" : "; \(queued) queued\(why)")
        }
        if !accepting { return "stopping" }
        return "idle, \(finished) done" + (queued == 0 ? "" : ", \(queued) queued\(why)")
    }
}
