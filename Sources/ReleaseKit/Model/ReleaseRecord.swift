import FoundationEssentials

/// The state of a release. Final states are everything but `queued` and `running`.
public enum ReleaseState: String, Codable, Sendable, CaseIterable {
    case queued, running, succeeded, failed, cancelled, interrupted, rejected

    /// The exit status `submit --wait`, `wait` and `retry --wait` use for this state.
    public var exitCode: Int32 {
        switch self {
        case .succeeded: 0
        case .failed: 1
        case .rejected: 2
        case .cancelled, .interrupted: 3
        case .queued, .running: 4
        }
    }

    /// Whether the release has ended (every state but `queued` and `running`).
    public var isFinal: Bool { self != .queued && self != .running }
}

/// The state of one task of a release.
public enum TaskState: String, Codable, Sendable {
    case pending, running, succeeded, failed
    case timedOut = "timed-out"
    case cancelled, skipped
    case notRun = "not-run"
}

/// A gate as it was read: the variable and its raw value (nil when unset).
public struct GateReading: Decodable, Sendable, Equatable {
    public var variable: String
    public var value: String?

    public init(variable: String, value: String?) {
        self.variable = variable
        self.value = value
    }
}

/// One run of a migration task that may be tried again (`lock-retries`): how it ended.
public struct AttemptRecord: Decodable, Sendable, Equatable {
    public var startedAt: Date?
    public var durationMs: Int64?
    /// `succeeded`, `lock-timeout` (run again), `failed`, `timed-out`, `cancelled`.
    public var outcome: String
    public var exitStatus: Int32?
    public var reason: String?

    public init(startedAt: Date?, durationMs: Int64?, outcome: String, exitStatus: Int32? = nil, reason: String? = nil) {
        self.startedAt = startedAt
        self.durationMs = durationMs
        self.outcome = outcome
        self.exitStatus = exitStatus
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey { case startedAt, durationMs, outcome, exitStatus, reason }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        startedAt = try c.decodeIfPresent(String.self, forKey: .startedAt).flatMap(Timestamp.parse)
        durationMs = try c.decodeIfPresent(Int64.self, forKey: .durationMs)
        outcome = try c.decode(String.self, forKey: .outcome)
        exitStatus = try c.decodeIfPresent(Int32.self, forKey: .exitStatus)
        reason = try c.decodeIfPresent(String.self, forKey: .reason)
    }
}

/// What a migration task did to the schema, by the framework's own status command run before
/// and after it: the migrations it applied and the schema version on each side.
public struct MigrationRecord: Decodable, Sendable, Equatable {
    public var tool: String
    public var versionBefore: String?
    public var versionAfter: String?
    public var applied: [String]
    /// Still pending after the task.
    public var pending: [String]

    public init(tool: String, versionBefore: String?, versionAfter: String?, applied: [String], pending: [String]) {
        self.tool = tool
        self.versionBefore = versionBefore
        self.versionAfter = versionAfter
        self.applied = applied
        self.pending = pending
    }
}

/// One task's part of a record.
public struct TaskRecord: Decodable, Sendable, Equatable {
    public var name: String
    public var state: TaskState
    public var reason: String?
    public var exitStatus: Int32?
    public var signal: Int32?
    public var startedAt: Date?
    public var durationMs: Int64?
    /// CPU time the task used, user and system, in milliseconds.
    public var cpuMs: Int64?
    /// The most memory the task held at once: its cgroup's peak where it had one, else its
    /// largest process's maximum resident set.
    public var peakMemoryBytes: Int64?
    public var gate: GateReading?
    public var command: [String]?
    /// A migration task's runs, when it may be tried again on a lock timeout.
    public var attempts: [AttemptRecord]?
    /// A migration task's effect on the schema, when its framework is known.
    public var migrations: MigrationRecord?

    public init(name: String, state: TaskState, reason: String? = nil, gate: GateReading? = nil, command: [String]? = nil) {
        self.name = name
        self.state = state
        self.reason = reason
        self.gate = gate
        self.command = command
    }

    enum CodingKeys: String, CodingKey {
        case name, state, reason, exitStatus, signal, startedAt, durationMs, cpuMs, peakMemoryBytes, gate, command, attempts, migrations
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        state = try c.decode(TaskState.self, forKey: .state)
        reason = try c.decodeIfPresent(String.self, forKey: .reason)
        exitStatus = try c.decodeIfPresent(Int32.self, forKey: .exitStatus)
        signal = try c.decodeIfPresent(Int32.self, forKey: .signal)
        startedAt = try c.decodeIfPresent(String.self, forKey: .startedAt).flatMap(Timestamp.parse)
        durationMs = try c.decodeIfPresent(Int64.self, forKey: .durationMs)
        cpuMs = try c.decodeIfPresent(Int64.self, forKey: .cpuMs)
        peakMemoryBytes = try c.decodeIfPresent(Int64.self, forKey: .peakMemoryBytes)
        gate = try c.decodeIfPresent(GateReading.self, forKey: .gate)
        command = try c.decodeIfPresent([String].self, forKey: .command)
        attempts = try c.decodeIfPresent([AttemptRecord].self, forKey: .attempts)
        migrations = try c.decodeIfPresent(MigrationRecord.self, forKey: .migrations)
    }
}

/// The outcome of a release (schema version 1): `done/<id>.record.json` or
/// `rejected/<id>.record.json`. Written atomically; secrets are masked before it is built.
public struct ReleaseRecord: Decodable, Sendable, Equatable {
    public static let schemaVersion = 1

    public var version: Int = ReleaseRecord.schemaVersion
    /// The release id, or for a file that could not be parsed, its name made safe.
    public var id: String
    public var app: String?
    public var release: String?
    /// When in the deploy it ran (absent in a record: predeploy).
    public var phase: ReleasePhase = .default
    public var state: ReleaseState
    public var reason: String?
    /// A stable code for the reason of a rejection.
    public var reasonCode: String?
    public var warnings: [String]
    public var directory: String?
    /// The image the tasks ran in, as requested.
    public var image: String?
    /// The image id it resolved to: exactly which build ran.
    public var imageID: String?
    /// The node the release ran on (a cluster's daemons each have one).
    public var node: String?
    /// How the release was coordinated in a cluster.
    public var cluster: ClusterInfo?
    public var submittedAt: Date?
    public var startedAt: Date?
    public var finishedAt: Date?
    public var durationMs: Int64?
    public var retryOf: String?
    public var tasks: [TaskRecord]

    public init(id: String, app: String?, release: String?, phase: ReleasePhase = .default, state: ReleaseState, reason: String? = nil,
                warnings: [String] = [], directory: String? = nil, submittedAt: Date? = nil, retryOf: String? = nil,
                tasks: [TaskRecord] = []) {
        self.id = id
        self.phase = phase
        self.app = app
        self.release = release
        self.state = state
        self.reason = reason
        self.warnings = warnings
        self.directory = directory
        self.submittedAt = submittedAt
        self.retryOf = retryOf
        self.tasks = tasks
    }

    enum CodingKeys: String, CodingKey {
        case version, id, app, release, phase, state, reason, reasonCode, warnings, directory, image, imageID, node, cluster
        case submittedAt, startedAt, finishedAt, durationMs, retryOf, tasks
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decode(Int.self, forKey: .version)
        id = try c.decode(String.self, forKey: .id)
        app = try c.decodeIfPresent(String.self, forKey: .app)
        release = try c.decodeIfPresent(String.self, forKey: .release)
        phase = try c.decodeIfPresent(ReleasePhase.self, forKey: .phase) ?? .default
        state = try c.decode(ReleaseState.self, forKey: .state)
        reason = try c.decodeIfPresent(String.self, forKey: .reason)
        reasonCode = try c.decodeIfPresent(String.self, forKey: .reasonCode)
        warnings = try c.decodeIfPresent([String].self, forKey: .warnings) ?? []
        directory = try c.decodeIfPresent(String.self, forKey: .directory)
        image = try c.decodeIfPresent(String.self, forKey: .image)
        imageID = try c.decodeIfPresent(String.self, forKey: .imageID)
        node = try c.decodeIfPresent(String.self, forKey: .node)
        cluster = try c.decodeIfPresent(ClusterInfo.self, forKey: .cluster)
        submittedAt = try c.decodeIfPresent(String.self, forKey: .submittedAt).flatMap(Timestamp.parse)
        startedAt = try c.decodeIfPresent(String.self, forKey: .startedAt).flatMap(Timestamp.parse)
        finishedAt = try c.decodeIfPresent(String.self, forKey: .finishedAt).flatMap(Timestamp.parse)
        durationMs = try c.decodeIfPresent(Int64.self, forKey: .durationMs)
        retryOf = try c.decodeIfPresent(String.self, forKey: .retryOf)
        tasks = try c.decodeIfPresent([TaskRecord].self, forKey: .tasks) ?? []
    }

    /// Parses a record file.
    public static func decode(_ bytes: [UInt8]) throws -> ReleaseRecord {
        try JSONDecoder().decode(ReleaseRecord.self, from: Data(bytes))
    }

    /// The time used to order records newest first: the id's time for ULIDs, else when it ended.
    public var sortTime: Date {
        ReleaseID(id)?.timestamp ?? submittedAt ?? finishedAt ?? .distantPast
    }
}

/// A cluster release's coordination: its deploy key (one run per key across the cluster) and
/// the node that ran its tasks (this one, or the one it followed).
public struct ClusterInfo: Decodable, Sendable, Equatable {
    public var deployKey: String
    public var ranOn: String?

    public init(deployKey: String, ranOn: String?) {
        self.deployKey = deployKey
        self.ranOn = ranOn
    }
}
