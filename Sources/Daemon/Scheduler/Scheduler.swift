import FoundationEssentials
import Glibc
import Logging
import ReleaseKit
import ReleaseSupport
import SystemPackage

/// What the scheduler needs from the rest of the daemon.
struct DaemonContext: Sendable {
    let spool: Spool
    let registry: [any ReleaseTask.Type]
    let processGuard: ProcessGuard?
    let notifier: SystemdNotifier
    let coordinator: any Coordinator
    let metrics: MetricsSlot
    /// What the releases that ended here say about each app's deploys.
    let history: HistoryBook
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
/// ones at once), keeps the waiting ones, lets releases start as the queue and the coordinator
/// allow, and books their ends. `SchedulerState` decides; this actor performs what it decides
/// — the spool makes each transition durable, the release service runs what starts.
actor Scheduler {
    let context: DaemonContext
    private(set) var config: DaemonConfig
    var intake: Intake
    var state: SchedulerState
    /// The stop switches of the releases let start.
    var controls: [ReleaseID: ReleaseControl] = [:]
    /// Admissions of waiting releases, reused at start while nothing they depend on changed.
    var admissions = AdmissionCache()
    /// Counts configurations applied: an admission made under an earlier one is not kept.
    var intakeGeneration = 0
    var rejections: RejectionLedger
    var rejectionCounts = RejectionCounts()
    /// A rejection could not be filed (disk full?): its file waits in incoming/.
    var intakeToRetry = false
    private let jobs: AsyncStream<Job>.Continuation
    let intakeWork: AsyncStream<Void>.Continuation
    private var idleWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
    private var nextWaiter = 0

    init(context: DaemonContext, config: DaemonConfig, jobs: AsyncStream<Job>.Continuation, intakeWork: AsyncStream<Void>.Continuation) {
        self.context = context
        self.config = config
        self.intake = Intake(config: config, registry: context.registry, logger: context.logger, environment: context.environment)
        self.state = SchedulerState(maxParallel: config.maxParallel)
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
            context.metrics.metrics?.setQueueDepth(state.queue.waitingCount)
        }
        config = newConfig
        state.maxParallel = newConfig.maxParallel
        intake = Intake(config: newConfig, registry: context.registry, logger: context.logger, environment: context.environment)
        intakeGeneration += 1
        admissions.removeAll()
        perform(state.dispatch())
    }

    /// Counts a release finished outside the event loop (interrupted at recovery, settled by
    /// the cluster at start).
    func count(_ record: ReleaseRecord) {
        state.counted()
        book(record)
        updateStatus()
    }

    /// Books a release's end in the metrics and the deploy history: every end passes here.
    func book(_ record: ReleaseRecord) {
        context.metrics.metrics?.finished(record)
        context.history.add(record)
    }

    // MARK: Acting

    /// Performs what the state machine decided, then shows where things stand (`status`:
    /// names merely noted as arriving change nothing shown until they are taken in).
    func perform(_ actions: [SchedulerState.Action], status: Bool = true) {
        for action in actions {
            switch action {
            case .start(let entry): start(entry)
            case .stop(let id, let reason):
                if let release = state.started[id], reason == .cancelled {
                    context.logger.notice("cancelling \(release.entry.app) \(release.entry.release)",
                                          metadata: .release(id: id.rawValue, app: release.entry.app, name: release.entry.release, phase: release.entry.phase, state: nil))
                }
                controls[id]?.stop(reason)
            case .cancelQueued(let entry):
                let admission = admissions.take(entry.id)
                let request = admission?.request ?? (try? intake.read(SpoolName("\(entry.id).json"), spool: context.spool).get())?.request
                if let request { cancelQueued(request) }
            case .cancelNotStarted(let request):
                cancelQueued(request)
            case .retryLater:
                Task {
                    try? await Task.sleep(for: .seconds(1))
                    self.nudge()
                }
            case .takeIn: intakeWork.yield()
            case .nothingRuns: resumeIdleWaiters()
            }
        }
        guard status else { return }
        context.metrics.metrics?.setQueueDepth(state.queue.waitingCount)
        updateStatus()
    }

    /// Starts a release the state let go: with its admission from intake if nothing it
    /// depends on changed since, else read and validated again (the file, the directory or
    /// release.toml may have changed while it waited) — either way on a thread of its own, as
    /// intake always is: the event loop never waits for a file system. Its stop switch exists
    /// from now on, so a cancel meanwhile is not lost.
    private func start(_ entry: ReleaseQueue.Entry) {
        controls[entry.id] = ReleaseControl()
        let cached = admissions.take(entry.id), intake = intake, spool = context.spool
        let name = SpoolName("\(entry.id).json")
        Task {
            let looked = await BlockingCall.run { () -> StartLook in
                if let cached, intake.stillHolds(cached, spool: spool) { return .kept(cached) }
                return .read(intake.evaluate(name, spool: spool))
            }
            await self.started(entry, looked)
        }
    }

    /// Acts on a starting release's admission: its job goes to the release service, or the
    /// file that is gone or no longer valid is dropped (and filed).
    private func started(_ entry: ReleaseQueue.Entry, _ looked: StartLook) {
        let name = SpoolName("\(entry.id).json")
        switch looked {
        case .kept(let admission), .read(.admitted(_, let admission)):
            guard let control = controls[entry.id] else { return }
            jobs.yield(Job(entry: entry, admission: admission, control: control, config: config))
            return
        case .read(.gone):
            context.logger.warning("\(entry.id) left incoming/ before it could start", metadata: ["release.id": "\(entry.id)"])
        case .read(.unreadable(let rejection)):
            file(name, owner: nil, reason: rejection.reason, partial: rejection.partial, request: nil)
        case .read(.invalid(let read, let reason)):
            file(name, owner: read.owner, reason: reason, partial: .init(), request: read.request)
        }
        controls[entry.id] = nil
        perform(state.dropped(entry.id))
    }

    /// Keeps an admission for a waiting release, within the memory budget.
    func keep(_ admission: Admission) { admissions.keep(admission) }

    /// What the release service tells of a release the scheduler let start: its one way back.
    enum ReleaseEvent: Sendable {
        /// The coordinator said not now (`first`: the deploy key the cluster runs first).
        case deferred(reason: String, first: String?)
        /// The coordinator refused it (its deploy key is another app's): rejected, as intake
        /// would have, and nothing of it runs.
        case rejected(RejectReason, ReleaseRequest)
        /// Its request is in `running/` (or it follows another node's run): it runs.
        case claimed
        /// How far it got, for the status line.
        case progress(String)
        /// Cancelled before it could claim its request: recorded cancelled, never started.
        case cancelledBeforeClaim(ReleaseRequest)
        /// It ended (its record is durable in `done/`), or never started after all (nil: its
        /// request left `incoming/` meanwhile, or the daemon stops first).
        case finished(ReleaseRecord?)
    }

    /// Books what the release service tells of a release (see `ReleaseEvent`).
    func release(_ id: ReleaseID, _ event: ReleaseEvent) {
        switch event {
        case .deferred(let reason, let first): deferred(id, reason: reason, first: first)
        case .rejected(let reason, let request): reject(id, request: request, reason: reason)
        case .claimed: claimed(id)
        case .progress(let text): setProgress(id, text: text)
        case .cancelledBeforeClaim(let request):
            controls[id] = nil
            perform(state.cancelledBeforeClaim(request))
        case .finished(let record): finished(id, record: record)
        }
    }

    /// The release's request is in `running/` (or it follows another node's run): it runs.
    private func claimed(_ id: ReleaseID) {
        state.claimed(id)
        updateStatus()
    }

    /// The coordinator said not now: the release waits again, and is asked about again soon.
    private func deferred(_ id: ReleaseID, reason: String, first: String?) {
        controls[id] = nil
        let (actions, newReason) = state.deferred(id, reason: reason, first: first)
        if newReason { context.logger.notice("\(id) waits: \(reason)", metadata: ["release.id": "\(id)"]) }
        perform(actions)
    }

    /// The coordinator refused a release let start (its deploy key is another app's): it is
    /// rejected as intake would have, and nothing of it runs.
    private func reject(_ id: ReleaseID, request: ReleaseRequest, reason: RejectReason) {
        controls[id] = nil
        file(SpoolName("\(id).json"), owner: nil, reason: reason, partial: .init(), request: request)
        perform(state.dropped(id))
    }

    /// Something the coordinator waits on changed: try again what waits.
    func nudge() { perform(state.nudged()) }

    /// Told when a task starts: shown in the status line.
    private func setProgress(_ id: ReleaseID, text: String) {
        state.progress(id, text)
        updateStatus()
    }

    /// Books a release that ended (its record is durable in `done/`), or one that never
    /// started after all (its request left `incoming/` meanwhile: `record` nil).
    private func finished(_ id: ReleaseID, record: ReleaseRecord?) {
        controls[id] = nil
        if let record { book(record) }
        perform(state.finished(id, counted: record != nil))
    }

    /// The status line, sent to systemd.
    func updateStatus() { context.notifier.status(state.statusText) }

    func refreshStatus() { updateStatus() }

    // MARK: Shutdown

    /// Stops starting releases; waiting requests stay in `incoming/` for the next start.
    func stopAccepting() {
        state.stopAccepting()
        updateStatus()
    }

    /// Waits until no release runs (returns early if the waiting task is cancelled).
    func waitUntilIdle() async {
        if state.runningCount == 0 { return }
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
        guard state.runningCount == 0 else { return }
        for w in idleWaiters.values { w.resume() }
        idleWaiters = [:]
    }

    /// Stops every running release (their records become `interrupted`).
    func interruptAll() { perform(state.interruptAll()) }

    var runningCount: Int { state.runningCount }
}

/// What a starting release's look found: the admission kept from intake, still holding, or
/// what reading and validating it again made of it.
enum StartLook: Sendable {
    case kept(Admission)
    case read(Intake.Evaluation)
}

/// The admissions of waiting releases the scheduler keeps, so that a release is not read and
/// validated twice when nothing changed: at most `budget` request bytes of them (past it, a
/// release is read again when it starts).
struct AdmissionCache {
    static let budget = 64 << 20
    private var admissions: [ReleaseID: Admission] = [:]
    private var bytes = 0

    mutating func keep(_ admission: Admission) {
        let size = Int(admission.file.size)
        guard bytes + size <= Self.budget else { return }
        admissions[admission.request.id] = admission
        bytes += size
    }

    mutating func take(_ id: ReleaseID) -> Admission? {
        guard let admission = admissions.removeValue(forKey: id) else { return nil }
        bytes -= Int(admission.file.size)
        return admission
    }

    mutating func removeAll() {
        admissions = [:]
        bytes = 0
    }
}
