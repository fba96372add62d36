import SystemPackage

/// A spool operation that failed, with the path and the system error.
public struct SpoolError: Error, Sendable, CustomStringConvertible {
    public struct Operation: RawRepresentable, Sendable, Hashable {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public static let create = Operation(rawValue: "cannot create")
        public static let write = Operation(rawValue: "cannot write")
        public static let submit = Operation(rawValue: "cannot spool the request as")
        public static let move = Operation(rawValue: "cannot move")
        public static let read = Operation(rawValue: "cannot read")
        public static let lock = Operation(rawValue: "cannot lock")
        public static let own = Operation(rawValue: "cannot take over")
        /// A transition stopped where a test asked (see `CrashPoint`).
        public static let simulatedCrash = Operation(rawValue: "stopped (a simulated crash) at")
    }

    public var operation: Operation
    public var path: FilePath
    public var errno: Errno
    /// Why, in words, when the system error alone does not say it.
    public var detail: String?

    public init(_ operation: Operation, path: FilePath, errno: Errno, detail: String? = nil) {
        self.operation = operation
        self.path = path
        self.errno = errno
        self.detail = detail
    }

    public var description: String { "\(operation.rawValue) \(path): \(detail ?? "\(errno)")" }
}
