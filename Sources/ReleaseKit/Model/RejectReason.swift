/// Why a request was not accepted: a stable code for programs and a sentence for people.
///
/// The message names the problem precisely (the field, the variable and its value, the file
/// and line), because it is what `releasectl submit --wait` prints to the deploy log.
public struct RejectReason: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable, machine-readable code.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let unreadable = Code(rawValue: "unreadable")
        public static let notRegularFile = Code(rawValue: "not-regular-file")
        public static let symlink = Code(rawValue: "symlink")
        public static let hardLink = Code(rawValue: "hard-link")
        public static let tooLarge = Code(rawValue: "too-large")
        public static let ownerNotAllowed = Code(rawValue: "owner-not-allowed")
        public static let invalidUTF8 = Code(rawValue: "invalid-utf8")
        public static let invalidJSON = Code(rawValue: "invalid-json")
        public static let schema = Code(rawValue: "schema")
        public static let fileName = Code(rawValue: "file-name")
        public static let duplicateID = Code(rawValue: "duplicate-id")
        /// The id's time is ahead of the daemon's clock.
        public static let futureID = Code(rawValue: "future-id")
        public static let directory = Code(rawValue: "directory")
        public static let gate = Code(rawValue: "gate")
        public static let unknownTask = Code(rawValue: "unknown-task")
        public static let appConfig = Code(rawValue: "release-toml")
        public static let procfile = Code(rawValue: "procfile")
        public static let appJSON = Code(rawValue: "app-json")
        /// A postdeploy whose deploy's predeploy did not succeed (or is not known).
        public static let phase = Code(rawValue: "phase")
        /// Another of the app's files (a Gemfile, bin/rails) cannot be used.
        public static let appFile = Code(rawValue: "app-file")
        public static let env = Code(rawValue: "env")
        public static let user = Code(rawValue: "user")
        /// The release's image cannot be used (not readable, bad settings for it).
        public static let image = Code(rawValue: "image")
        /// A limit release.toml asks for is over the operator's ceiling, or cannot be enforced.
        public static let limits = Code(rawValue: "limits")
        /// The deploy key is another app's.
        public static let deployKey = Code(rawValue: "deploy-key")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
