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
    let logger: Logger
}

/// A release the scheduler decided to start; the release service runs it.
struct Job: Sendable {
    let request: ReleaseRequest
    let plan: ReleasePlan
    let control: ReleaseControl
    let runner: ReleaseRunner
}

/// The daemon's event loop: it takes requests in, rejects the bad ones at once, keeps one queue
/// per app in id order, and starts releases — one at a time per app, up to `max-parallel` in
/// all, oldest first — and writes each outcome durably.
actor Scheduler {
    /// A waiting release. Only what scheduling needs is kept in memory; the request itself
    /// (its env may be large) is read again from `incoming/` when the release starts.
    private struct Queued {
        let id: ReleaseID
        let app: String
        let release: String
        var name: FilePath.Component { FilePath.Component("\(id).json")! }
    }
    /// The request `intake` read and validated last, while the same `arrived` step still runs
    /// (cleared once it has dispatched): a release started there has not waited, so `start`
    /// uses it rather than reading and validating the file a second time.
    private var justValidated: (request: ReleaseRequest, plan: ReleasePlan, identity: TaskIdentity?)?

    private let context: DaemonContext
    private var config: DaemonConfig
    private var policy: IntakePolicy
    private var queues: [String: [Queued]] = [:]
    private var queuedIDs: Set<String> = []
    /// Running releases by app.
    private var running: [String: (id: String, release: String, control: ReleaseControl)] = [:]
    private var progress: [String: String] = [:]
    private var finishedCount = 0
    private var accepting = true
    private let jobs: AsyncStream<Job>.Continuation
    private var idleWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
    private var nextWaiter = 0
    var metrics: Metrics?

    init(context: DaemonContext, config: DaemonConfig, jobs: AsyncStream<Job>.Continuation) {
        self.context = context
        self.config = config
        self.policy = Self.policy(for: config, logger: context.logger)
        self.jobs = jobs
    }

    static func policy(for config: DaemonConfig, logger: Logger) -> IntakePolicy {
        var users: Set<uid_t> = [0, getuid(), geteuid()]
        var groups: Set<gid_t> = [getgid(), getegid()]
        if let names = config.allowUsers {
            users = [0]
            for name in names {
                if let uid = uid_t(name) { users.insert(uid) }
                else if let pw = getpwnam(name) { users.insert(pw.pointee.pw_uid) }
                else { logger.warning("allow-users: no such user \(name)") }
            }
        }
        if let names = config.allowGroups {
            groups = []
            for name in names {
                if let gid = gid_t(name) { groups.insert(gid) }
                else if let gr = getgrnam(name) { groups.insert(gr.pointee.gr_gid) }
                else { logger.warning("allow-groups: no such group \(name)") }
            }
        }
        let roots = config.appRoots.map { RequestIntake.realPath($0) ?? $0 }
        return IntakePolicy(allowedUsers: users, allowedGroups: groups, appRoots: roots)
    }

    var currentConfig: DaemonConfig { config }

    /// A rejected request could not be filed (disk full?) and waits in incoming/.
    private var intakeToRetry = false

    /// Looks at incoming/ again if a request could not be filed earlier.
    func retryIntake() async {
        guard intakeToRetry else { return }
        intakeToRetry = false
        await rescan()
    }

    /// Applies a re-read configuration (SIGHUP). Running releases keep their limits.
    func apply(_ newConfig: DaemonConfig) {
        if newConfig.metricsFile != config.metricsFile {
            if let path = newConfig.metricsFile { setMetrics(Metrics(path: path)) } else { metrics = nil }
            metrics?.queueDepth = queuedIDs.count
        }
        config = newConfig
        policy = Self.policy(for: newConfig, logger: context.logger)
        dispatch()
    }

    /// Blocks the event loop's thread (a test hook, `--test-stall-on-sigusr2`): for
    /// `$RELEASED_TEST_STALL_SECONDS` (default an hour, so the watchdog fires).
    func stall() {
        let seconds = getenv("RELEASED_TEST_STALL_SECONDS").flatMap { UInt32(String(cString: $0)) } ?? 3600
        sleep(seconds)
    }

    func refreshStatus() { updateStatus() }

    func setMetrics(_ m: Metrics) {
        metrics = m
        m.restoreLastSuccess(from: context.spool.finishedRecords())
        m.write()
    }

    /// Counts a release finished outside the event loop (interrupted at recovery).
    func count(_ record: ReleaseRecord) {
        finishedCount += 1
        metrics?.finished(record)
    }

    // MARK: Intake

    /// Looks at everything in `incoming/` (at start, and after an inotify overflow).
    func rescan() async {
        let names = context.spool.entries(.incoming).sorted { $0.string < $1.string }
        await arrived(names)
        processCancels(context.spool.entries(.cancel))
    }

    /// Files that appeared in `incoming/`. Each is dispatched as soon as it is read, and the
    /// loop yields now and then, so thousands of arrivals neither delay the first claim nor
    /// stall the rest of the event loop.
    func arrived(_ names: [FilePath.Component]) async {
        for (i, name) in names.enumerated() {
            let s = name.string
            if s.hasPrefix(".") { continue }
            if s.hasSuffix(".json") {
                let id = String(s.dropLast(5))
                // Already queued, or dispatched and about to be claimed.
                if queuedIDs.contains(id) || running.values.contains(where: { $0.id == id }) { continue }
            }
            intake(name)
            dispatch()
            justValidated = nil
            if i % 32 == 31 { await Task.yield() }
        }
    }

    private func intake(_ name: FilePath.Component) {
        let spool = context.spool
        let request: ReleaseRequest
        do {
            request = try RequestIntake.read(name, spool: spool, policy: policy)
        } catch {
            if error.reason.code == .unreadable, !spool.exists(spool.path(.incoming).appending(name)) {
                return  // already gone (moved by an earlier event)
            }
            reject(name, reason: error.reason, partial: error.partial, request: nil)
            return
        }
        let id = request.id.rawValue
        if running.values.contains(where: { $0.id == id }) || spool.exists(spool.requestPath(.running, id))
            || spool.exists(spool.recordPath(.done, id)) || spool.exists(spool.recordPath(.rejected, id)) {
            reject(name, reason: RejectReason(.duplicateID, "duplicate id: release \(id) already exists"),
                   partial: .init(id: id, app: request.app, release: request.release, submittedAt: request.submittedAt), request: request,
                   keepID: false)
            return
        }
        if spool.exists(spool.path(.cancel, id)) {
            // Cancelled before the daemon picked it up (e.g. while no daemon ran).
            cancelQueued(request)
            spool.remove(.cancel, id)
            return
        }
        let validated: (plan: ReleasePlan, identity: TaskIdentity?)
        do {
            validated = try validate(request)
        } catch {
            reject(name, reason: error, partial: .init(), request: request)
            return
        }
        enqueue(Queued(id: request.id, app: request.app, release: request.release))
        justValidated = (request, validated.plan, validated.identity)
        context.logger.info("queued \(request.app) \(request.release)", metadata: [
            "release.id": "\(id)", "release.app": "\(request.app)", "release.name": "\(request.release)", "release.state": "queued",
        ])
        metrics?.queueDepth = queuedIDs.count
    }

    /// Puts a release in its app's queue, in id order.
    private func enqueue(_ queued: Queued, atHead: Bool = false) {
        queuedIDs.insert(queued.id.rawValue)
        var queue = queues[queued.app, default: []]
        if atHead {
            queue.insert(queued, at: 0)
        } else if let last = queue.last, queued.id < last.id {
            queue.insert(queued, at: queue.firstIndex { queued.id < $0.id }!)
        } else {
            queue.append(queued)
        }
        queues[queued.app] = queue
    }

    /// Full validation: directory, app user, release.toml, gates. Returns the plan.
    private func validate(_ request: ReleaseRequest) throws(RejectReason) -> (ReleasePlan, TaskIdentity?) {
        let identity = try identity(for: request.app)
        let plan = try RequestIntake.plan(app: request.app, directory: request.directory, env: request.env, tasks: request.tasks,
                                          policy: policy, registry: context.registry, credentials: identity?.credentials)
        return (plan, identity)
    }

    /// The user an app's tasks run as: `[apps.<name>] user`, else `default-user`. A daemon
    /// running as root never runs tasks as root unless `allow-root-tasks` says so: a request of
    /// an app with no user is rejected.
    private func identity(for app: String) throws(RejectReason) -> TaskIdentity? {
        guard let user = config.apps[app]?.user ?? config.defaultUser else {
            if geteuid() == 0 && !config.allowRootTasks {
                throw RejectReason(.user, "released runs as root and app \(app) has no user to run its tasks as: set [apps.\(app)] user (or default-user) in released.toml; tasks never run as root unless allow-root-tasks is set")
            }
            return nil
        }
        guard geteuid() == 0 else {
            throw RejectReason(.user, "[apps.\(app)] user = \(user) needs the daemon to run as root")
        }
        guard let pw = getpwnam(user) else { throw RejectReason(.user, "[apps.\(app)] user \(user) does not exist") }
        let uid = pw.pointee.pw_uid
        let gid = pw.pointee.pw_gid
        guard uid != 0 else { throw RejectReason(.user, "[apps.\(app)] user \(user) is root; tasks never run as root this way") }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(user, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(user, gid, &groups, &count)
        }
        return TaskIdentity(user: user, uid: uid, gid: gid, groups: Array(groups.prefix(Int(max(0, count)))),
                            home: pw.pointee.pw_dir.map { String(cString: $0) } ?? "/")
    }

    /// Moves a request to `rejected/` with a record saying why; the record is written first.
    private func reject(_ name: FilePath.Component, reason: RejectReason, partial: ReleaseRequest.Partial, request: ReleaseRequest?,
                        keepID: Bool = true) {
        let spool = context.spool
        let masking = request.map { Masking(env: $0.env) } ?? .none
        let base = keepID ? (request?.id.rawValue ?? Self.safeStem(name.string)) : (request.map { "\($0.id).duplicate" } ?? Self.safeStem(name.string))
        var stem = base
        var n = 1
        while spool.exists(spool.requestPath(.rejected, stem)) || spool.exists(spool.recordPath(.rejected, stem)) {
            n += 1
            stem = "\(base).\(n)"
        }
        // What could be read of a broken file is kept only if it is valid as such.
        let partialApp = partial.app.flatMap { Syntax.isValidAppName($0) ? $0 : nil }
        let partialRelease = partial.release.flatMap { Syntax.isValidReleaseLabel($0) && $0.utf8.count <= 512 ? $0 : nil }
        var record = ReleaseRecord(id: stem, app: request?.app ?? partialApp, release: request?.release ?? partialRelease,
                                   state: .rejected, reason: masking.apply(reason.message), directory: request?.directory,
                                   submittedAt: request?.submittedAt ?? partial.submittedAt,
                                   retryOf: request?.retryOf?.rawValue ?? partial.retryOf.flatMap { ReleaseID($0)?.rawValue })
        record.reasonCode = reason.code.rawValue
        record.finishedAt = Date()
        let logger = context.logger
        do {
            try spool.writeAtomically(record.encoded(), to: .rejected, name: "\(stem).record.json", syncFolder: false)
            try spool.move(name, from: .incoming, to: .rejected, as: "\(stem).json")
        } catch {
            // Left in incoming/; the maintenance loop looks again (see retryIntake).
            logger.error("cannot file the rejected request \(Masking.preview(name.string)): \(error)")
            intakeToRetry = true
            return
        }
        logger.error("rejected \(Masking.preview(name.string)): \(record.reason ?? "")", metadata: [
            "release.id": "\(stem)", "release.app": "\(record.app ?? "")", "release.name": "\(record.release ?? "")",
            "release.state": "rejected", "message.id": "\(MessageID.releaseRejected)",
        ])
        metrics?.finished(record)
    }

    /// A file name made safe to use as a record id: `[A-Za-z0-9._-]`, no leading dot.
    static func safeStem(_ name: String) -> String {
        var stem = name.hasSuffix(".json") ? String(name.dropLast(5)) : name
        stem = String(stem.unicodeScalars.map { c -> Character in
            (c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "-" || c == "_" || c == ".")) ? Character(c) : "_"
        }.prefix(100))
        while stem.hasPrefix(".") { stem.removeFirst() }
        // Never a name a record has (`<stem>.record.json`): a file filed under one would be
        // read as the daemon's record.
        if stem.hasSuffix(".record") { stem = String(stem.dropLast(".record".count)) + "_record" }
        return stem.isEmpty ? "unnamed" : stem
    }

    // MARK: Cancel

    /// Files that appeared in `cancel/`.
    func processCancels(_ names: [FilePath.Component]) {
        let spool = context.spool
        for name in names {
            let id = name.string
            if let (app, entry) = running.first(where: { $0.value.id == id }) {
                context.logger.notice("cancelling \(app) \(entry.release)", metadata: ["release.id": "\(id)", "release.app": "\(app)"])
                entry.control.stop(.cancelled)
                continue  // the file is removed when the release ends
            }
            if queuedIDs.contains(id), let app = queues.first(where: { $0.value.contains { $0.id.rawValue == id } })?.key {
                let queued = queues[app]!.first { $0.id.rawValue == id }!
                queues[app]!.removeAll { $0.id.rawValue == id }
                if queues[app]!.isEmpty { queues[app] = nil }
                queuedIDs.remove(id)
                if let request = try? RequestIntake.read(queued.name, spool: spool, policy: policy) {
                    cancelQueued(request)
                }
            }
            spool.remove(.cancel, id)
        }
        dispatch()
    }

    private func cancelQueued(_ request: ReleaseRequest) {
        let spool = context.spool
        var record = ReleaseRecord(id: request.id.rawValue, app: request.app, release: request.release, state: .cancelled,
                                   reason: "cancelled by releasectl cancel before it started", directory: request.directory,
                                   submittedAt: request.submittedAt, retryOf: request.retryOf?.rawValue)
        record.finishedAt = Date()
        do {
            try spool.writeAtomically(record.encoded(), to: .done, name: "\(request.id).record.json", syncFolder: false)
            try spool.move(FilePath.Component("\(request.id).json")!, from: .incoming, to: .done, as: "\(request.id).json", replace: true)
        } catch {
            context.logger.error("cannot record the cancellation of \(request.id): \(error)")
        }
        context.logger.notice("cancelled \(request.app) \(request.release) before it started", metadata: [
            "release.id": "\(request.id)", "release.app": "\(request.app)", "release.name": "\(request.release)",
            "release.state": "cancelled", "message.id": "\(MessageID.releaseCancelled)",
        ])
        finishedCount += 1
        metrics?.finished(record)
        metrics?.queueDepth = queuedIDs.count
    }

    // MARK: Dispatch

    private func dispatch() {
        defer { updateStatus() }
        guard accepting else { return }
        while running.count < config.maxParallel {
            // The app whose oldest waiting release is oldest, among apps not running.
            guard let app = queues.filter({ !$0.value.isEmpty && running[$0.key] == nil })
                .min(by: { $0.value[0].id < $1.value[0].id })?.key else { return }
            let queued = queues[app]!.removeFirst()
            if queues[app]!.isEmpty { queues[app] = nil }
            queuedIDs.remove(queued.id.rawValue)
            start(queued)
        }
    }

    private func start(_ queued: Queued) {
        let spool = context.spool
        let id = queued.id.rawValue
        let name = queued.name
        let request: ReleaseRequest
        let plan: ReleasePlan
        let identity: TaskIdentity?
        if let fresh = justValidated, fresh.request.id == queued.id {
            // Read and validated in this very step: it has not waited.
            (request, plan, identity) = fresh
            justValidated = nil
        } else {
            // Read and validated again: the file, the directory or release.toml may have changed
            // while it waited.
            do {
                request = try RequestIntake.read(name, spool: spool, policy: policy)
            } catch {
                if spool.exists(spool.path(.incoming).appending(name)) {
                    reject(name, reason: error.reason, partial: error.partial, request: nil)
                } else {
                    context.logger.warning("\(id) left incoming/ before it could start", metadata: ["release.id": "\(id)"])
                }
                return
            }
            do {
                (plan, identity) = try validate(request)
            } catch {
                reject(name, reason: error, partial: .init(), request: request)
                return
            }
        }
        let control = ReleaseControl()
        running[request.app] = (id, request.release, control)
        metrics?.queueDepth = queuedIDs.count
        let app = request.app
        let release = request.release
        let runner = ReleaseRunner(
            spool: spool, registry: context.registry, processGuard: context.processGuard,
            releaseTimeout: config.releaseTimeout, killGrace: config.killGrace, identity: identity,
            logger: context.logger,
            onProgress: { [weak self] task, index, count in
                guard let self else { return }
                Task { await self.setProgress(app: app, id: id, text: "\(app) \(release): \(task) (\(index)/\(count))") }
            })
        jobs.yield(Job(request: request, plan: plan, control: control, runner: runner))
    }

    func setProgress(app: String, id: String, text: String) {
        guard running[app]?.id == id else { return }  // a late update of an earlier release
        progress[app] = text
        updateStatus()
    }

    /// A release could not be claimed (the spool is not writable, the disk full): it did not
    /// start. It goes back to the head of its app's queue, so that nothing overtakes it, and is
    /// tried again (the caller waits a little before saying so).
    func claimFailed(_ request: ReleaseRequest) {
        running[request.app] = nil
        progress[request.app] = nil
        if context.spool.exists(context.spool.requestPath(.incoming, request.id.rawValue)) {
            enqueue(Queued(id: request.id, app: request.app, release: request.release), atHead: true)
        }
        dispatch()
        if running.isEmpty {
            for w in idleWaiters.values { w.resume() }
            idleWaiters = [:]
        }
    }

    /// Books a finished release (its record is already durable in `done/`).
    func finished(_ request: ReleaseRequest, record: ReleaseRecord) {
        running[request.app] = nil
        progress[request.app] = nil
        finishedCount += 1
        metrics?.finished(record)
        dispatch()
        if running.isEmpty {
            for w in idleWaiters.values { w.resume() }
            idleWaiters = [:]
        }
    }

    // MARK: Shutdown

    /// Stops starting releases; queued requests stay in `incoming/` for the next start.
    func stopAccepting() {
        accepting = false
        updateStatus()
    }

    /// Waits until no release runs (returns early if the waiting task is cancelled).
    func waitUntilIdle() async {
        if running.isEmpty { return }
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

    /// Stops every running release (their records become `interrupted`).
    func interruptAll() {
        for entry in running.values { entry.control.stop(.shutdown) }
    }

    var runningCount: Int { running.count }

    // MARK: Status

    private func updateStatus() {
        let text: String
        if !running.isEmpty {
            let parts = running.keys.sorted().map { progress[$0] ?? "\($0) \(running[$0]!.release): starting" }
            text = parts.joined(separator: "; ") + (queuedIDs.isEmpty ? "" : "; \(queuedIDs.count) queued")
        } else if !accepting {
            text = "stopping"
        } else {
            text = "idle, \(finishedCount) done" + (queuedIDs.isEmpty ? "" : ", \(queuedIDs.count) queued")
        }
        context.notifier.status(text)
    }
}
