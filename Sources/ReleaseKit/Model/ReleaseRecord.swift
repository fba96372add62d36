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
}

/// The state of one task of a release.
public enum TaskState: String, Codable, Sendable {
    case pending, running, succeeded, failed
    case timedOut = "timed-out"
    case cancelled, skipped
    case notRun = "not-run"
}

/// A gate as it was read: the variable and its raw value (nil when unset).
public struct GateReading: Codable, Sendable, Equatable {
    public var variable: String
    public var value: String?

    public init(variable: String, value: String?) {
        self.variable = variable
        self.value = value
    }
}

/// One task's part of a record.
public struct TaskRecord: Codable, Sendable, Equatable {
    public var name: String
    public var state: TaskState
    public var reason: String?
    public var exitStatus: Int32?
    public var signal: Int32?
    public var startedAt: Date?
    public var durationMs: Int64?
    public var gate: GateReading?
    public var command: [String]?

    public init(name: String, state: TaskState, reason: String? = nil, gate: GateReading? = nil, command: [String]? = nil) {
        self.name = name
        self.state = state
        self.reason = reason
        self.gate = gate
        self.command = command
    }

    enum CodingKeys: String, CodingKey {
        case name, state, reason, exitStatus, signal, startedAt, durationMs, gate, command
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(state, forKey: .state)
        try c.encodeIfPresent(reason, forKey: .reason)
        try c.encodeIfPresent(exitStatus, forKey: .exitStatus)
        try c.encodeIfPresent(signal, forKey: .signal)
        try c.encodeIfPresent(startedAt.map(Timestamp.format), forKey: .startedAt)
        try c.encodeIfPresent(durationMs, forKey: .durationMs)
        try c.encodeIfPresent(gate, forKey: .gate)
        try c.encodeIfPresent(command, forKey: .command)
    }

    /// The task as a member of `ReleaseRecord.encoded()`: the fields of `encode(to:)`, in order.
    func write(to w: inout PrettyJSONWriter) {
        w.beginObject()
        w.key("name"); w.string(name)
        w.key("state"); w.string(state.rawValue)
        if let reason { w.key("reason"); w.string(reason) }
        if let exitStatus { w.key("exitStatus"); w.int(exitStatus) }
        if let signal { w.key("signal"); w.int(signal) }
        if let startedAt { w.key("startedAt"); w.string(Timestamp.format(startedAt)) }
        if let durationMs { w.key("durationMs"); w.int(durationMs) }
        if let gate {
            w.key("gate")
            w.beginObject()
            w.key("variable"); w.string(gate.variable)
            if let value = gate.value { w.key("value"); w.string(value) }
            w.endObject()
        }
        if let command {
            w.key("command")
            w.beginArray()
            for argument in command { w.element(); w.string(argument) }
            w.endArray()
        }
        w.endObject()
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
        gate = try c.decodeIfPresent(GateReading.self, forKey: .gate)
        command = try c.decodeIfPresent([String].self, forKey: .command)
    }
}

/// The outcome of a release (schema version 1): `done/<id>.record.json` or
/// `rejected/<id>.record.json`. Written atomically; secrets are masked before it is built.
public struct ReleaseRecord: Codable, Sendable, Equatable {
    public static let schemaVersion = 1

    public var version: Int = ReleaseRecord.schemaVersion
    /// The release id, or for a file that could not be parsed, its name made safe.
    public var id: String
    public var app: String?
    public var release: String?
    public var state: ReleaseState
    public var reason: String?
    /// A stable code for the reason of a rejection.
    public var reasonCode: String?
    public var warnings: [String]
    public var directory: String?
    public var submittedAt: Date?
    public var startedAt: Date?
    public var finishedAt: Date?
    public var durationMs: Int64?
    public var retryOf: String?
    public var tasks: [TaskRecord]

    public init(id: String, app: String?, release: String?, state: ReleaseState, reason: String? = nil,
                warnings: [String] = [], directory: String? = nil, submittedAt: Date? = nil, retryOf: String? = nil,
                tasks: [TaskRecord] = []) {
        self.id = id
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
        case version, id, app, release, state, reason, reasonCode, warnings, directory
        case submittedAt, startedAt, finishedAt, durationMs, retryOf, tasks
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(version, forKey: .version)
        try c.encode(id, forKey: .id)
        try c.encode(app, forKey: .app)
        try c.encode(release, forKey: .release)
        try c.encode(state, forKey: .state)
        try c.encodeIfPresent(reason, forKey: .reason)
        try c.encodeIfPresent(reasonCode, forKey: .reasonCode)
        try c.encode(warnings, forKey: .warnings)
        try c.encodeIfPresent(directory, forKey: .directory)
        try c.encodeIfPresent(submittedAt.map(Timestamp.format), forKey: .submittedAt)
        try c.encodeIfPresent(startedAt.map(Timestamp.format), forKey: .startedAt)
        try c.encodeIfPresent(finishedAt.map(Timestamp.format), forKey: .finishedAt)
        try c.encodeIfPresent(durationMs, forKey: .durationMs)
        try c.encodeIfPresent(retryOf, forKey: .retryOf)
        try c.encode(tasks, forKey: .tasks)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decode(Int.self, forKey: .version)
        id = try c.decode(String.self, forKey: .id)
        app = try c.decodeIfPresent(String.self, forKey: .app)
        release = try c.decodeIfPresent(String.self, forKey: .release)
        state = try c.decode(ReleaseState.self, forKey: .state)
        reason = try c.decodeIfPresent(String.self, forKey: .reason)
        reasonCode = try c.decodeIfPresent(String.self, forKey: .reasonCode)
        warnings = try c.decodeIfPresent([String].self, forKey: .warnings) ?? []
        directory = try c.decodeIfPresent(String.self, forKey: .directory)
        submittedAt = try c.decodeIfPresent(String.self, forKey: .submittedAt).flatMap(Timestamp.parse)
        startedAt = try c.decodeIfPresent(String.self, forKey: .startedAt).flatMap(Timestamp.parse)
        finishedAt = try c.decodeIfPresent(String.self, forKey: .finishedAt).flatMap(Timestamp.parse)
        durationMs = try c.decodeIfPresent(Int64.self, forKey: .durationMs)
        retryOf = try c.decodeIfPresent(String.self, forKey: .retryOf)
        tasks = try c.decodeIfPresent([TaskRecord].self, forKey: .tasks) ?? []
    }

    /// Pretty JSON with a trailing newline, fields in schema order (the order of `CodingKeys`).
    /// Written by hand rather than with `JSONEncoder`: the daemon writes a record at each
    /// step of every release, and `JSONEncoder` took more CPU than the task processes of a
    /// release of no-op tasks. `encode(to:)` writes the same fields, for `--json` output.
    public func encoded() -> [UInt8] {
        var w = PrettyJSONWriter(capacity: 512 + 256 * tasks.count)
        w.beginObject()
        w.key("version"); w.int(version)
        w.key("id"); w.string(id)
        w.key("app"); w.string(app)
        w.key("release"); w.string(release)
        w.key("state"); w.string(state.rawValue)
        if let reason { w.key("reason"); w.string(reason) }
        if let reasonCode { w.key("reasonCode"); w.string(reasonCode) }
        w.key("warnings")
        w.beginArray()
        for warning in warnings { w.element(); w.string(warning) }
        w.endArray()
        if let directory { w.key("directory"); w.string(directory) }
        if let submittedAt { w.key("submittedAt"); w.string(Timestamp.format(submittedAt)) }
        if let startedAt { w.key("startedAt"); w.string(Timestamp.format(startedAt)) }
        if let finishedAt { w.key("finishedAt"); w.string(Timestamp.format(finishedAt)) }
        if let durationMs { w.key("durationMs"); w.int(durationMs) }
        if let retryOf { w.key("retryOf"); w.string(retryOf) }
        w.key("tasks")
        w.beginArray()
        for task in tasks {
            w.element()
            task.write(to: &w)
        }
        w.endArray()
        w.endObject()
        var bytes = w.bytes
        bytes.append(UInt8(ascii: "\n"))
        return bytes
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

/// Encodes arrays of records (and other values) the way the CLI prints `--json`.
public enum JSONOutput {
    public static func encode<T: Encodable>(_ value: T) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try! e.encode(value), as: UTF8.self)
    }
}
