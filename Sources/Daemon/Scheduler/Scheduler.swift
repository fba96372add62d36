import FoundationEssentials
import Glibc
import Logging
import ReleaseKit
import SystemPackage

/// What the scheduler needs from the rest of the daemon.
struct DaemonContext: Sendable {
    let spool: Spool
    let registry: [any ReleaseTask.Type]
    let processGuard: ProcessGuard?
    let notifier: SystemdNotifier
    let coordinator: any Coordinator
    let metrics: MetricsSlot
    let logger: Logger
    /// The daemon's own environment, as `KEY=value` (what the container engine runs with).
    let environment: [String]
}

/// A release the scheduler let start; the release service runs it.
struct Job: Sendable {
    let entry: ReleaseQueue.Entry
    let admission: Admission
    let control: ReleaseControl
    let config: DaemonConfig
}

/// The daemon's event loop. It takes requests in (round-robin by submitter, rejecting the bad
/// ones at once), keeps the waiting ones in a `ReleaseQueue`, lets releases start as the queue
/// and the coordinator allow, and books their ends. It decides; the spool makes each
/// transition durable, the release service runs what starts.
actor Scheduler {
    /// A release let start: `starting` until its request is in `running/`.
    struct Started {
        let entry: ReleaseQueue.Entry
        let control: ReleaseControl
        var claimed = false
        var progress: String?
    }

    let context: DaemonContext
    private(set) var config: DaemonConfig
    var intake: Intake
    var queue = ReleaseQueue()
    var started: [ReleaseID: Started] = [:]
    /// Admissions of waiting releases, reused at start while nothing they depend on changed.
    var admissions: [ReleaseID: Admission] = [:]
    var admissionBytes = 0
    /// Names waiting to be taken in, by the user that owns them (see Scheduler+Intake.swift).
    var arrivals = Arrivals()
    /// Names taken from `arrivals` whose evaluation has not been settled yet.
    var inFlight: Set<SpoolName> = []
    /// Counts configurations applied: an admission made under an earlier one is not kept.
    var intakeGeneration = 0
    var rejections: RejectionLedger
    var rejectionCounts = RejectionCounts()
    /// A rejection could not be filed (disk full?): its file waits in incoming/.
    var intakeToRetry = false
    var finishedCount = 0
    var accepting = true
    /// Why the coordinator last said not now (shown in the status line until it says yes).
    var waitingFor: String?
    var retryScheduled = false
    private let jobs: AsyncStream<Job>.Continuation
    let intakeWork: AsyncStream<Void>.Continuation
    private var idleWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
    private var nextWaiter = 0

    /// At most this many request bytes are kept in memory as admissions of waiting releases;
    /// past it, a release is read and validated again when it starts.
    static let admissionBudget = 64 << 20

    init(context: DaemonContext, config: DaemonConfig, jobs: AsyncStream<Job>.Continuation, intakeWork: AsyncStream<Void>.Continuation) {
        self.context = context
        self.config = config
        self.intake = Intake(config: config, registry: context.registry, logger: context.logger, environment: context.environment)
        self.jobs = jobs
        self.intakeWork = intakeWork
        self.rejections = RejectionLedger(spool: context.spool)
    }

    /// Applies a re-read configuration (SIGHUP). Running releases keep theirs; waiting ones
    /// are validated again when they start.
    func apply(_ newConfig: DaemonConfig) {
        if newConfig.metricsFile != config.metricsFile {
            context.metrics.use(path: newConfig.metricsFile)
            context.metrics.metrics?.restoreLastSuccess(from: context.spool.finishedRecords())
            context.metrics.metrics?.setQueueDepth(queue.waitingCount)
        }
        config = newConfig
        intake = Intake(config: newConfig, registry: context.registry, logger: context.logger, environment: context.environment)
        intakeGeneration += 1
        admissions = [:]
        admissionBytes = 0
        dispatch()
    }

    /// Counts a release finished outside the event loop (interrupted at recovery).
    func count(_ record: ReleaseRecord) {
        finishedCount += 1
        context.metrics.metrics?.finished(record)
    }

    // MARK: Dispatch

    /// Lets releases start as far as the queue allows.
    func dispatch() {
        defer { updateStatus() }
        guard accepting else { return }
        while true {
            let entries = queue.start(maxParallel: config.maxParallel)
            if entries.isEmpty { return }
            for entry in entries { start(entry) }
        }
    }

    /// Starts a release the queue let go: with its admission from intake if nothing it
    /// depends on changed since, else read and validated again (the file, the directory or
    /// release.toml may have changed while it waited).
    private func start(_ entry: ReleaseQueue.Entry) {
        let name = SpoolName("\(entry.id).json")
        var admission = takeAdmission(entry.id)
        if let cached = admission, !intake.stillHolds(cached, spool: context.spool) { admission = nil }
        if admission == nil {
            switch intake.evaluate(name, spool: context.spool) {
            case .gone:
                queue.ended(entry.id)
                context.logger.warning("\(entry.id) left incoming/ before it could start", metadata: ["release.id": "\(entry.id)"])
                return
            case .unreadable(let rejection):
                queue.ended(entry.id)
                file(name, owner: nil, reason: rejection.reason, partial: rejection.partial, request: nil)
                return
            case .invalid(let read, let reason):
                queue.ended(entry.id)
                file(name, owner: read.owner, reason: reason, partial: .init(), request: read.request)
                return
            case .admitted(_, let fresh):
                admission = fresh
            }
        }
        let control = ReleaseControl()
        started[entry.id] = Started(entry: entry, control: control)
        context.metrics.metrics?.setQueueDepth(queue.waitingCount)
        jobs.yield(Job(entry: entry, admission: admission!, control: control, config: config))
    }

    /// Keeps an admission for a waiting release, within the memory budget.
    func keep(_ admission: Admission) {
        let size = Int(admission.file.size)
        guard admissionBytes + size <= Self.admissionBudget else { return }
        admissions[admission.request.id] = admission
        admissionBytes += size
    }

    func takeAdmission(_ id: ReleaseID) -> Admission? {
        guard let admission = admissions.removeValue(forKey: id) else { return nil }
        admissionBytes -= Int(admission.file.size)
        return admission
    }

    /// The release's request is in `running/`: it runs.
    func claimed(_ id: ReleaseID) {
        started[id]?.claimed = true
        waitingFor = nil
        updateStatus()
    }

    /// The coordinator said not now: the release waits again at the head of its key, and is
    /// asked about again in a second (or sooner, when the cluster changes: `nudge`).
    func deferred(_ id: ReleaseID, reason: String, first: String? = nil) {
        guard let job = started.removeValue(forKey: id) else { return }
        queue.putBack(id)
        // The cluster's order wins over this node's (ids made on other hosts, requests that
        // reached the nodes in another order).
        if let first { queue.promote(deployKey: first, serialKey: job.entry.serialKey) }
        if waitingFor != reason { context.logger.notice("\(id) waits: \(reason)", metadata: ["release.id": "\(id)"]) }
        waitingFor = reason
        resumeIdleWaiters()
        updateStatus()
        guard !retryScheduled else { return }
        retryScheduled = true
        Task {
            try? await Task.sleep(for: .seconds(1))
            self.nudge()
        }
    }

    /// The coordinator refused a release let start (its deploy key is another app's): it is
    /// rejected as intake would have, and nothing of it runs.
    func reject(_ job: Job, reason: RejectReason) {
        let id = job.entry.id
        started[id] = nil
        queue.ended(id)
        file(SpoolName("\(id).json"), owner: nil, reason: reason, partial: .init(), request: job.admission.request)
        dispatch()
        resumeIdleWaiters()
    }

    /// Something the coordinator waits on changed: try again what waits.
    func nudge() {
        retryScheduled = false
        dispatch()
    }

    /// Told when a task starts: shown in the status line.
    func setProgress(_ id: ReleaseID, text: String) {
        guard started[id] != nil else { return }  // a late update of a release that ended
        started[id]?.progress = text
        updateStatus()
    }

    /// Books a release that ended (its record is durable in `done/`), or one that never
    /// started after all (its request left `incoming/` meanwhile: `record` nil).
    func finished(_ id: ReleaseID, record: ReleaseRecord?) {
        started[id] = nil
        queue.ended(id)
        if let record {
            finishedCount += 1
            context.metrics.metrics?.finished(record)
        }
        dispatch()
        resumeIdleWaiters()
    }

    // MARK: Shutdown

    /// Stops starting releases; waiting requests stay in `incoming/` for the next start.
    func stopAccepting() {
        accepting = false
        updateStatus()
    }

    /// Waits until no release runs (returns early if the waiting task is cancelled).
    func waitUntilIdle() async {
        if started.isEmpty { return }
        nextWaiter += 1
        let token = nextWaiter
        await withTaskCancellationHandler {
            await withCheckedContinuation { c in
                if Task.isCancelled { c.resume() } else { idleWaiters[token] = c }
            }
        } onCancel: {
            Task { await self.cancelIdleWaiter(token) }
        }
    }

    private func cancelIdleWaiter(_ token: Int) {
        idleWaiters.removeValue(forKey: token)?.resume()
    }

    private func resumeIdleWaiters() {
        guard started.isEmpty else { return }
        for w in idleWaiters.values { w.resume() }
        idleWaiters = [:]
    }

    /// Stops every running release (their records become `interrupted`).
    func interruptAll() {
        for release in started.values { release.control.stop(.shutdown) }
    }

    var runningCount: Int { started.count }
}
