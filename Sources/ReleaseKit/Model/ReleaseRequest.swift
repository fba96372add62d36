import FoundationEssentials

/// A release request as a writer drops it into `incoming/` (schema version 1).
///
/// Decoding is strict: unknown fields, wrong types and bad values are rejected with a
/// `RejectReason` naming the field, because the daemon trusts nothing in the spool.
public struct ReleaseRequest: Sendable, Equatable {
    public static let schemaVersion = 1
    public static let maximumFileSize = 1 << 20
    /// The most variables a request's env may hold.
    public static let maximumEnvCount = 1000
    /// The longest variable (`NAME=value`, in bytes) a program can be started with: the
    /// kernel's limit on one string of a new program's environment (MAX_ARG_STRLEN, 128 KiB
    /// with its NUL), for host and image tasks alike.
    public static let maximumVariableBytes = 128 * 1024 - 1

    public var id: ReleaseID
    public var app: String
    public var release: String
    /// The app directory; optional when `image` is given (then release.toml is read from the
    /// image unless the directory has one).
    public var directory: String?
    /// The image whose containers run the tasks, as the engine names it.
    public var image: String?
    public var env: [String: String]
    public var tasks: [String]?
    public var submittedAt: Date?
    public var retryOf: ReleaseID?
    /// Groups the requests of one deploy across several hosts (see `deployKeyOrDefault`).
    public var deployKey: String?
    /// When in the deploy it runs (`"phase"`; absent: predeploy).
    public var phase: ReleasePhase

    public init(id: ReleaseID, app: String, release: String, directory: String?, image: String? = nil, env: [String: String] = [:],
                tasks: [String]? = nil, submittedAt: Date? = Date(), retryOf: ReleaseID? = nil, deployKey: String? = nil,
                phase: ReleasePhase = .default) {
        self.deployKey = deployKey
        self.phase = phase
        self.id = id
        self.app = app
        self.release = release
        self.directory = directory
        self.image = image
        self.env = env
        self.tasks = tasks
        self.submittedAt = submittedAt
        self.retryOf = retryOf
    }

    /// What could be read of a request that was rejected, for its record.
    public struct Partial: Sendable {
        public var id: String?
        public var app: String?
        public var release: String?
        public var submittedAt: Date?
        public var retryOf: String?
        public var phase: ReleasePhase?

        public init(id: String? = nil, app: String? = nil, release: String? = nil, submittedAt: Date? = nil, retryOf: String? = nil) {
            self.id = id
            self.app = app
            self.release = release
            self.submittedAt = submittedAt
            self.retryOf = retryOf
        }
    }

    static let knownFields: Set<String> = ["version", "id", "app", "release", "directory", "image", "env", "tasks", "submittedAt", "retryOf",
                                           "deployKey", "phase"]

    /// The deploy key a cluster groups this request under: `deployKey`, else `app/release`.
    public var deployKeyOrDefault: String { deployKey ?? Self.defaultDeployKey(app: app, release: release) }

    /// A deploy key and phase as one key of the cluster's database: the deploy key itself for
    /// a predeploy, the deploy key, a record separator (U+001E) and `postdeploy` for a
    /// postdeploy — and, for a retry of a postdeploy (which keeps its deploy's key: its
    /// predeploy is that key's), another separator and the retry's own id. No deploy key holds
    /// a control character, so no key of one phase, or one retry, can be another's.
    public static func clusterKey(_ deployKey: String, phase: ReleasePhase, retry: ReleaseID? = nil) -> String {
        guard phase == .postdeploy else { return deployKey }
        return deployKey + "\u{1E}" + phase.rawValue + (retry.map { "\u{1E}" + $0.rawValue } ?? "")
    }

    /// A cluster key as people read it: `shop/v42`, `shop/v42 (postdeploy)`,
    /// `shop/v42 (postdeploy, retry 01J…)`.
    public static func showClusterKey(_ key: String) -> String {
        let parts = key.split(separator: "\u{1E}", omittingEmptySubsequences: false).map(String.init)
        guard parts.count > 1 else { return key }
        return "\(parts[0]) (\(parts[1])" + (parts.count > 2 ? ", retry \(parts[2])" : "") + ")"
    }

    /// The deploy key of a request that names none: `app/release`.
    public static func defaultDeployKey(app: String, release: String) -> String { "\(app)/\(release)" }

    /// Why `key` cannot be a deploy key of `app`, or nil. A deploy key belongs to one app; a
    /// key of the default form (`<app>/<release>`) belongs to the app it names, so no other
    /// app can take an app's default keys before it (the cluster refuses a key another app
    /// already holds, whatever its form).
    public static func deployKeyProblem(_ key: String, app: String) -> String? {
        guard let slash = key.firstIndex(of: "/") else { return nil }
        let owner = String(key[..<slash])
        guard Syntax.isValidAppName(owner), owner != app else { return nil }
        return "\(Masking.preview(key)) has the form of app \(owner)'s own keys (\(owner)/<release>); a release of \(app) cannot use it"
    }

    /// Decodes and checks a request file's bytes. `partial` receives what could be read even
    /// when the request is rejected.
    public static func decode(_ bytes: [UInt8], partial: inout Partial) throws(RejectReason) -> ReleaseRequest {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw RejectReason(.invalidUTF8, "the request is not valid UTF-8")
        }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        } catch {
            throw RejectReason(.invalidJSON, "the request is not valid JSON: \(JSONValue.describe(error))")
        }
        guard case .object(let object) = value else {
            throw RejectReason(.schema, "the request must be a JSON object, not \(value.kind)")
        }
        if case .string(let s)? = object["id"] { partial.id = s }
        if case .string(let s)? = object["app"] { partial.app = s }
        if case .string(let s)? = object["release"] { partial.release = s }
        if case .string(let s)? = object["submittedAt"] { partial.submittedAt = Timestamp.parse(s) }
        if case .string(let s)? = object["retryOf"] { partial.retryOf = s }
        if case .string(let s)? = object["phase"] { partial.phase = ReleasePhase(rawValue: s) }

        if let unknown = object.keys.filter({ !knownFields.contains($0) }).sorted().first {
            throw RejectReason(.schema, "unknown field \(Masking.preview(unknown)) in the request")
        }
        func string(_ key: String, required: Bool = true) throws(RejectReason) -> String? {
            switch object[key] {
            case .string(let s)?: return s
            case nil, .null?:
                if required { throw RejectReason(.schema, "the request has no \"\(key)\"") }
                return nil
            case let other?: throw RejectReason(.schema, "\"\(key)\" must be a string, not \(other.kind)")
            }
        }
        switch object["version"] {
        case .number(let n)? where n == Double(schemaVersion): break
        case .number(let n)?: throw RejectReason(.schema, "unsupported request version \(JSONValue.format(n)) (this daemon reads version \(schemaVersion))")
        case nil: throw RejectReason(.schema, "the request has no \"version\"")
        case let other?: throw RejectReason(.schema, "\"version\" must be a number, not \(other.kind)")
        }
        let idString = try string("id")!
        guard let id = ReleaseID(idString) else {
            throw RejectReason(.schema, "\"id\" \(Masking.preview(idString)) is not a ULID (26 characters of Crockford base32)")
        }
        let app = try string("app")!
        guard Syntax.isValidAppName(app) else {
            throw RejectReason(.schema, "\"app\" \(Masking.preview(app)) is not a valid app name ([a-z0-9][a-z0-9-]{0,62})")
        }
        let release = try string("release")!
        guard Syntax.isValidReleaseLabel(release) else {
            throw RejectReason(.schema, "\"release\" \(Masking.preview(release)) must be 1 to 128 printable characters")
        }
        var image: String?
        if let s = try string("image", required: false) {
            guard Syntax.isValidImageReference(s) else {
                throw RejectReason(.schema, "\"image\" \(Masking.preview(s)) is not an image reference (letters, digits and ._-/:@+, at most 255)")
            }
            image = s
        }
        // An image carries the app: the directory is then optional.
        let directory = try string("directory", required: image == nil)
        var env: [String: String] = [:]
        switch object["env"] {
        case nil, .null?: break
        case .object(let o)?:
            guard o.count <= maximumEnvCount else {
                throw RejectReason(.env, "\"env\" has \(o.count) variables; at most \(maximumEnvCount)")
            }
            for (key, v) in o {
                if let problem = Syntax.envKeyProblem(key) {
                    throw RejectReason(.env, "\"env\" has \(problem)")
                }
                guard case .string(let s) = v else {
                    throw RejectReason(.env, "\"env\".\(key) must be a string, not \(v.kind)")
                }
                if s.utf8.contains(0) { throw RejectReason(.env, "\"env\".\(key) contains a NUL byte") }
                let bytes = key.utf8.count + 1 + s.utf8.count
                guard bytes <= maximumVariableBytes else {
                    throw RejectReason(.env, "\"env\".\(key) is \(bytes) bytes as NAME=value; no program can be started with a variable over \(maximumVariableBytes) bytes (the kernel's limit)")
                }
                env[key] = s
            }
        case let other?: throw RejectReason(.schema, "\"env\" must be an object of strings, not \(other.kind)")
        }
        var tasks: [String]?
        switch object["tasks"] {
        case nil, .null?: break
        case .array(let items)?:
            tasks = []
            for item in items {
                guard case .string(let s) = item else {
                    throw RejectReason(.schema, "\"tasks\" must be an array of task names, found \(item.kind)")
                }
                tasks!.append(s)
            }
        case let other?: throw RejectReason(.schema, "\"tasks\" must be an array of task names, not \(other.kind)")
        }
        var submittedAt: Date?
        if let s = try string("submittedAt", required: false) {
            guard let date = Timestamp.parse(s) else {
                throw RejectReason(.schema, "\"submittedAt\" \(Masking.preview(s)) is not an RFC 3339 time")
            }
            submittedAt = date
        }
        var retryOf: ReleaseID?
        if let s = try string("retryOf", required: false) {
            guard let r = ReleaseID(s) else { throw RejectReason(.schema, "\"retryOf\" \(Masking.preview(s)) is not a release id") }
            retryOf = r
        }
        var deployKey: String?
        if let s = try string("deployKey", required: false) {
            guard Syntax.isValidReleaseLabel(s) else {
                throw RejectReason(.schema, "\"deployKey\" \(Masking.preview(s)) must be 1 to 128 printable characters")
            }
            if let problem = deployKeyProblem(s, app: app) { throw RejectReason(.deployKey, "\"deployKey\" \(problem)") }
            deployKey = s
        }
        var phase = ReleasePhase.default
        if let s = try string("phase", required: false) {
            guard let p = ReleasePhase(rawValue: s) else {
                throw RejectReason(.schema, "\"phase\" \(Masking.preview(s)) is not a phase (\(ReleasePhase.names))")
            }
            phase = p
        }
        return ReleaseRequest(id: id, app: app, release: release, directory: directory, image: image, env: env,
                              tasks: tasks, submittedAt: submittedAt, retryOf: retryOf, deployKey: deployKey, phase: phase)
    }

    /// The request file's bytes, as `releasectl` writes them.
    public func encoded() -> [UInt8] {
        struct Wire: Encodable {
            var version: Int
            var id: String
            var app: String
            var release: String
            var directory: String?
            var image: String?
            var env: [String: String]
            var tasks: [String]?
            var submittedAt: String?
            var retryOf: String?
            var deployKey: String?
            /// Written only for a postdeploy: a daemon that does not know phases then rejects
            /// it (unknown field) rather than running it as a predeploy.
            var phase: String?
        }
        let wire = Wire(version: Self.schemaVersion, id: id.rawValue, app: app, release: release, directory: directory, image: image,
                        env: env, tasks: tasks, submittedAt: submittedAt.map(Timestamp.format), retryOf: retryOf?.rawValue,
                        deployKey: deployKey, phase: phase == .default ? nil : phase.rawValue)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try! encoder.encode(wire)) + [UInt8(ascii: "\n")]
    }
}

/// A JSON value, decoded without a schema so that every field can be checked by hand.
enum JSONValue: Decodable, Sendable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    static func format(_ n: Double) -> String {
        n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? DecodingError {
            switch e {
            case .dataCorrupted(let ctx):
                if let underlying = ctx.underlyingError { return "\(underlying)" }
                return ctx.debugDescription
            default: return "\(e)"
            }
        }
        return "\(error)"
    }
}
