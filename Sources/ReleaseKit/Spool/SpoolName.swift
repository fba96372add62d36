/// A name in a spool folder, as its bytes: a name need not be UTF-8 (a junk file's must still
/// be opened, moved and shown), and keeping it as bytes makes the daemon's per-file work plain
/// byte copies, however many files a folder holds.
public struct SpoolName: Hashable, Sendable, CustomStringConvertible {
    /// The name's bytes: never empty, no NUL, no `/`.
    public let bytes: [UInt8]

    /// A name from text (a release id with its suffix, say). Traps on an impossible name: only
    /// the program's own names are made this way.
    public init(_ string: String) {
        precondition(!string.isEmpty && !string.utf8.contains(0) && !string.utf8.contains(UInt8(ascii: "/")), "not a file name: \(string)")
        bytes = Array(string.utf8)
    }

    /// A name as a directory or inotify gave it; nil when it cannot be one.
    public init?(bytes: [UInt8]) {
        guard !bytes.isEmpty, !bytes.contains(0), !bytes.contains(UInt8(ascii: "/")) else { return nil }
        self.bytes = bytes
    }

    /// The name as text (bytes that are not UTF-8 shown as U+FFFD).
    public var string: String { String(decoding: bytes, as: UTF8.self) }
    public var description: String { string }

    public func hasPrefix(_ prefix: String) -> Bool { bytes.starts(with: prefix.utf8) }
    public func hasSuffix(_ suffix: String) -> Bool { bytes.reversed().starts(with: suffix.utf8.reversed()) }

    /// The release id a request file's name (`<id>.json`) gives.
    public var requestID: ReleaseID? {
        guard hasSuffix(".json"), !hasSuffix(".record.json") else { return nil }
        return ReleaseID(String(decoding: bytes.dropLast(5), as: UTF8.self))
    }
}
