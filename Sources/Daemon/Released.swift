import ArgumentParser
import FoundationEssentials
import Glibc
import Logging
import ReleaseContainers
import ReleaseKit
import ReleasePlugins
import ServiceLifecycle
import Synchronization
import SystemPackage

/// `released`: the release daemon.
struct Released: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "released",
        abstract: "Run app release tasks (migrate, seed, cache-clear, notify) from a spool of requests.",
        discussion: """
            Watches the spool's incoming/ folder for release requests (written by `releasectl submit`), \
            runs each request's gated tasks in the app directory, and records the outcome in done/ or \
            rejected/. Reports to systemd through sd_notify and the journal.
            """)

    @Option(name: .long, help: ArgumentHelp("The spool folder (default: $RELEASECTL_SPOOL, the config's spool, or /var/lib/releasectl).", valueName: "dir"))
    var spool: String?

    @Option(name: .long, help: ArgumentHelp("The configuration file.", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("How many apps may release at once (default 2).", valueName: "n"))
    var maxParallel: Int?

    @Option(name: .long, help: "Where to log: auto (the journal under systemd, else stderr), journal or console.")
    var logTarget: LogTarget = .auto

    @Option(name: .long, help: ArgumentHelp("Write Prometheus metrics to this file after each release.", valueName: "path"))
    var metricsFile: String?

    @Flag(name: .long, help: "When running as root, let apps with no [apps.<name>] user (and no default-user) run their tasks as root (development machines).")
    var allowRootTasks = false

    @Flag(name: .long, help: .hidden)
    var testStallOnSigusr2 = false

    /// This program's own path (what /proc/self/exe names): its helpers are installed near it.
    static let executablePath: String = {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }()


    func validate() throws {
        if let n = maxParallel, n < 1 { throw ValidationError("--max-parallel must be at least 1") }
    }

    /// The configuration file with the flags applied.
    func loadConfig() throws -> DaemonConfig {
        var c = try DaemonConfig.load(path: config)
        if let maxParallel { c.maxParallel = maxParallel }
        if let metricsFile { c.metricsFile = metricsFile }
        if allowRootTasks { c.allowRootTasks = true }
        try ConfigCheck.refuse(c)
        return c
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        // Until the signal service takes it (after recovery), a SIGHUP must not kill the daemon.
        signal(SIGHUP, SIG_IGN)
        logTarget.bootstrap()
        var rootLogger = Logger(label: "released")
        let notifier = SystemdNotifier()

        func fatal(_ message: String, errno: Int32 = EINVAL) -> ExitCode {
            rootLogger.critical("\(message)")
            notifier.failed(errno: errno, status: message)
            JournalWriter.shared.flush()
            return ExitCode(1)
        }

        let daemonConfig: DaemonConfig
        do { daemonConfig = try loadConfig() } catch {
            throw fatal("configuration error: \(error)")
        }
        // In a cluster every entry names this node (RELEASE_NODE); the password is read once,
        // here, and kept out of every log line.
        var clusterPassword: String?
        if let cluster = daemonConfig.cluster {
            rootLogger[metadataKey: "release.node"] = "\(cluster.node)"
            do { clusterPassword = try cluster.readPassword() } catch { throw fatal("configuration error: \(error)") }
        }
        // Every task starts through releasectl-init (`TaskInit`), found beside this executable:
        // without it no release could run.
        let taskInit: TaskInit
        switch TaskInit.locate(besides: Self.executablePath) {
        case .success(let found): taskInit = found
        case .failure(let missing): throw fatal("refusing to start: \(missing)", errno: ENOENT)
        }
        let logger = rootLogger
        for warning in ConfigCheck.warnings(daemonConfig) { logger.warning("\(warning)") }
        let spoolOption = spool ?? daemonConfig.spool
        let spool = Spool.resolve(option: spoolOption)
        do { try spool.create() } catch {
            throw fatal("\(error)", errno: error.errno.rawValue)
        }
        let open = spool.worldWritableFolders()
        if !open.isEmpty {
            throw fatal("refusing to start: \(open.map(\.string).joined(separator: ", ")) is world-writable (chmod o-w)", errno: EPERM)
        }
        if access(spool.path(.incoming).string, W_OK) != 0 {
            throw fatal("the spool \(spool.root) is not writable by this user", errno: errno)
        }
        let lock: SpoolLock
        do { lock = try SpoolLock.acquire(spool) } catch {
            if error.errno == .resourceTemporarilyUnavailable {
                throw fatal("another released is already running on \(spool.root) (it holds \(spool.lockPath))", errno: EBUSY)
            }
            throw fatal("\(error)", errno: error.errno.rawValue)
        }
        defer { withExtendedLifetime(lock) {} }
        do {
            let takeOver = try spool.takeOwnership()
            for folder in takeOver.chowned {
                logger.warning("\(folder) belonged to another user (made before released first ran); it is released's now")
            }
            for folder in takeOver.replaced {
                logger.warning("\(folder) was a symbolic link or a file, not a folder; replaced by an empty folder (the link's target is left alone)")
            }
            if takeOver.removedForeign > 0 {
                logger.warning("removed \(takeOver.removedForeign) file(s) of other users from released's own spool folders (never believed)")
            }
        } catch {
            throw fatal("refusing to start: \(error)", errno: error.errno.rawValue)
        }

        let processGuard: ProcessGuard?
        // A daemon that died before may have left its guard ending its processes: no task starts
        // until it is done (it ends every process of an app's user started since its task).
        if !(await lock.awaitGuard(within: .seconds(30))) {
            logger.warning("the process guard of the daemon that ran before is still ending its processes after 30s; starting anyway")
        }
        var guardLock: FileDescriptor?
        do { guardLock = try lock.lockForGuard() } catch {
            logger.warning("\(error); a daemon started after this one will not wait for this one's process guard")
        }
        do { processGuard = try ProcessGuard.spawn(holding: guardLock) } catch {
            logger.warning("\(error); task processes may outlive a killed daemon")
            processGuard = nil
        }

        // In a cluster a release whose tasks had ended is left pending: the cluster may have
        // taken its outcome, so the coordinator settles it with what the cluster says.
        let recovered = spool.recover(keepingPending: daemonConfig.cluster != nil)
        for record in recovered.interrupted {
            logger.warning("release interrupted: \(record.app ?? "?") \(record.release ?? "?") was running when the daemon stopped",
                           metadata: .release(record, messageID: MessageID.releaseInterrupted))
        }
        for (id, error) in recovered.failed {
            logger.critical("cannot record the interrupted release \(id): \(error)")
        }
        if !recovered.interrupted.isEmpty {
            logger.warning("\(recovered.interrupted.count) release(s) were running when the daemon last stopped; marked interrupted")
            // Whatever of their tasks still runs (the last daemon's guard may still be at it,
            // or missing) ends before anything else starts: in a cluster another node may run
            // the next release of their serial key as soon as this one says they ended.
            let ended = await ProcessGuard.endAll(releases: Set(recovered.interrupted.map(\.id)), within: .seconds(10))
            if ended.left > 0 {
                logger.critical("\(ended.left) of \(ended.found) process(es) left by the interrupted release(s) still run after 10s of SIGKILL (stuck in the kernel?); starting anyway")
            } else if ended.found > 0 {
                logger.warning("ended \(ended.found) process(es) left by the interrupted release(s)")
            }
        }
        // Temporary files of writes cut short: a submitter's removed with its own credentials.
        spool.removeLeftovers { uid, gid in FileCredentials(uid: uid, gid: gid, groups: []) }

        let coordinator: any Coordinator
        var clusterCoordinator: ClusterCoordinator?
        if let cluster = daemonConfig.cluster {
            let made = ClusterCoordinator(settings: cluster, password: clusterPassword, spool: spool, killGrace: daemonConfig.killGrace,
                                          processGuard: processGuard, pending: recovered.pending, logger: logger)
            for record in recovered.pending {
                logger.warning("\(record.app ?? "?") \(record.release ?? "?"): its tasks had ended when the daemon stopped; its outcome is settled with the cluster once the database answers",
                               metadata: ["release.id": "\(record.id)"])
            }
            do { try await made.start() } catch {
                throw fatal("the cluster database \(cluster.host):\(cluster.port)/\(cluster.database) refused this node: \(error)", errno: EACCES)
            }
            logger.notice("node \(cluster.node) of the cluster on \(cluster.host):\(cluster.port)/\(cluster.database) (lease \(DurationParser.format(cluster.lease)))")
            coordinator = made
            clusterCoordinator = made
        } else {
            coordinator = LocalCoordinator()
        }

        let metrics = MetricsSlot()
        metrics.use(path: daemonConfig.metricsFile)
        let finished = spool.finishedRecords()
        metrics.metrics?.restoreLastSuccess(from: finished)
        let environment = ProcessInfo.processInfo.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let context = DaemonContext(spool: spool, registry: Registry.tasks, processGuard: processGuard, notifier: notifier,
                                    coordinator: coordinator, metrics: metrics, history: HistoryBook(finished), logger: logger,
                                    environment: environment)
        let engine = ContainerEngine(executable: daemonConfig.containerEngine, environment: environment)
        if let program = ExecutableLookup.find(engine.executable, path: ContainerExecutor.path(of: environment)) {
            processGuard?.use(engine: program)
            // Containers of releases that were running when the daemon last stopped: only
            // names of the daemon's own scheme for a release this spool recovered as
            // interrupted (labels are not proof: an image can carry any label, and hand it to
            // every container of that image).
            let ours = Set(recovered.interrupted.flatMap { record in
                Registry.tasks.map { ContainerExecutor.containerName(release: record.id, task: $0.name) }
            })
            let left = ours.isEmpty ? [] : engine.containerNames().filter(ours.contains)
            if !left.isEmpty {
                logger.warning("removing \(left.count) container(s) of releases that were running when the daemon stopped: \(left.joined(separator: ", "))")
                engine.remove(left)
            }
        }
        let (jobs, jobsContinuation) = AsyncStream.makeStream(of: Job.self)
        let (intakeWork, intakeContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let scheduler = Scheduler(context: context, config: daemonConfig, jobs: jobsContinuation, intakeWork: intakeContinuation)
        for record in recovered.interrupted { await scheduler.count(record) }

        clusterCoordinator?.onChange { await scheduler.nudge() }
        clusterCoordinator?.onSettled { await scheduler.count($0) }
        let configBox = ConfigBox(daemonConfig)
        let running = RunningTasks()
        let release = ReleaseService(
            context: context, scheduler: scheduler, jobs: jobs, jobsContinuation: jobsContinuation,
            executor: { job, admission in
                if let image = admission.request.image {
                    return ContainerExecutor(engine: ContainerEngine(executable: job.config.containerEngine, environment: environment),
                                             image: admission.image?.id ?? image, workingDirectory: admission.workingDirectory ?? "/",
                                             settings: job.config.settings(for: admission.request.app), identity: admission.identity,
                                             spool: spool, processGuard: processGuard, killGrace: job.config.killGrace, initProgram: taskInit)
                }
                return HostExecutor(starter: taskInit, processGuard: processGuard, killGrace: job.config.killGrace, identity: admission.identity,
                                    running: running, scopes: ServiceManager.makesScopes)
            },
            shutdownGrace: { configBox.value.shutdownGrace })
        let watchdog = WatchdogService(scheduler: scheduler, notifier: notifier)
        let signals = SignalService(
            scheduler: scheduler, notifier: notifier, logger: logger,
            reload: { try loadConfig() },
            onReload: { config in
                if config.spool.map({ Spool.resolve(option: $0).root != spool.root }) ?? false {
                    logger.warning("the spool cannot change on reload; restart the daemon to use \(config.spool!)")
                }
                for warning in ConfigCheck.warnings(config) { logger.warning("\(warning)") }
                configBox.value = config
                await scheduler.apply(config)
            },
            signals: await SignalService.trapping(stallOnSIGUSR2: testStallOnSigusr2))
        // Shut down in reverse order: releases first (their grace), the watchdog last.
        var groupConfig = ServiceGroupConfiguration(
            services: [
                .init(service: watchdog),
            ] + ClusterServices.all(clusterCoordinator).map { .init(service: $0) } + [
                .init(service: signals),
                .init(service: MetricsService(slot: metrics)),
                .init(service: MaintenanceService(scheduler: scheduler, spool: spool, logger: logger)),
                .init(service: IntakeService(scheduler: scheduler, spool: spool, work: intakeWork)),
                .init(service: WatchService(scheduler: scheduler, spool: spool, notifier: notifier, logger: logger)),
                .init(service: release, successTerminationBehavior: .gracefullyShutdownGroup),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        groupConfig.cancellationSignals = []
        let group = ServiceGroup(configuration: groupConfig)
        defer {
            // Images intake read are not left mounted.
            ContainerEngine.pendingUnmounts.flush(timeout: .seconds(10))
            // The last STOPPING=1/STATUS= and journal entries go out before the process exits.
            notifier.flush()
            JournalWriter.shared.flush()
        }
        try await group.run()
    }
}

extension LogTarget: ExpressibleByArgument {}

/// The current configuration, shared with closures that run outside the scheduler.
final class ConfigBox: Sendable {
    private let storage: Mutex<DaemonConfig>
    init(_ c: DaemonConfig) { storage = Mutex(c) }
    var value: DaemonConfig {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}
