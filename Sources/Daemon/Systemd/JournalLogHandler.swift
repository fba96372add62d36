import CSystemd
import Glibc
import Logging

/// A swift-log handler that writes structured entries to the systemd journal through
/// `sd_journal_sendv(3)`.
///
/// Each entry carries `MESSAGE`, `PRIORITY`, `SYSLOG_IDENTIFIER`, `CODE_FILE`, `CODE_LINE`,
/// `CODE_FUNC`, and the logger's metadata as journal fields: `release.id` becomes `RELEASE_ID`,
/// `message.id` `MESSAGE_ID`, `duration.usec` `DURATION_USEC` (journal field names allow only
/// `[A-Z0-9_]`, at most 64 characters, no leading underscore or digit). Metadata never replaces
/// the fields above (a `message` key becomes `LOG_MESSAGE`); empty values are left out. A
/// release's entries start with its context (`shop v42 migrate | …`, see `ReleaseContext`).
///
/// When the journal does not take an entry (no socket, a stale one, journald gone), the line
/// goes to stderr instead, readable and with the same context, so it is never lost; under
/// systemd stderr is itself connected to the journal.
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let identifier: String
    let fallback: ConsoleLogHandler

    /// Fields the handler sets itself; metadata with these names is renamed `LOG_<NAME>`.
    static let ownFields: Set<String> = ["MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE", "CODE_FUNC"]

    public init(label: String, identifier: String = "released") {
        self.identifier = identifier
        self.fallback = ConsoleLogHandler(label: label)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        var console = fallback
        console.metadata = metadata
        console.logLevel = logLevel
        // Sent from the writer's thread: logging never blocks on journald.
        JournalWriter.shared.post(.init(fields: Self.fields(for: event, metadata: merged, identifier: identifier),
                                        fallback: { [console] in console.log(event: event) }))
    }

    /// The entries' fields, `NAME=value` each: one entry per line, as `log(event:)` per line
    /// would make them, but only `MESSAGE` differs from line to line.
    static func fields(for lines: LogLines, level: Logger.Level, metadata: Logger.Metadata, identifier: String, file: String,
                       function: String, line: UInt) -> [[String]] {
        let sample = LogEvent(level: level, message: "", metadata: nil, source: nil, file: file, function: function, line: line)
        let common = fields(for: sample, metadata: metadata, identifier: identifier).dropFirst()
        let context = ReleaseContext.prefixed("", metadata: metadata)
        return lines.ranges.indices.map { i in ["MESSAGE=" + context + lines.string(i)] + common }
    }

    /// The entry's fields, `NAME=value` each.
    static func fields(for event: LogEvent, metadata: Logger.Metadata, identifier: String) -> [String] {
        var fields: [String] = []
        fields.reserveCapacity(6 + metadata.count)
        fields.append("MESSAGE=" + ReleaseContext.prefixed("\(event.message)", metadata: metadata))
        fields.append("PRIORITY=\(priority(event.level))")
        fields.append("SYSLOG_IDENTIFIER=\(identifier)")
        fields.append("CODE_FILE=\(event.file)")
        fields.append("CODE_LINE=\(event.line)")
        fields.append("CODE_FUNC=\(event.function)")
        for (key, value) in metadata {
            let text = "\(value)"
            guard !text.isEmpty, var name = fieldName(key) else { continue }
            if ownFields.contains(name) { name = "LOG_" + name }
            fields.append("\(name)=\(text)")
        }
        return fields
    }

    /// Sends one entry: 0 when the journal took it, else a negative errno. Values may hold
    /// newlines or any bytes: libsystemd encodes such fields in binary form.
    ///
    /// sd_journal_sendv reports success when the socket does not exist ("fail silently if the
    /// journal is not available"), which would lose the entry; so a missing socket is checked
    /// first. A stale socket (journald gone) fails with ECONNREFUSED by itself.
    static func send(_ fields: [String]) -> Int32 {
        guard access(LogTarget.journalSocket, F_OK) == 0 else { return -ENOENT }
        let total = fields.reduce(0) { $0 + $1.utf8.count }
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(total, 1), alignment: 1)
        defer { storage.deallocate() }
        var iovecs: [iovec] = []
        iovecs.reserveCapacity(fields.count)
        var offset = 0
        for field in fields {
            let n = field.utf8.count
            _ = UnsafeMutableRawBufferPointer(rebasing: storage[offset..<(offset + n)]).initializeMemory(as: UInt8.self, from: field.utf8)
            iovecs.append(iovec(iov_base: storage.baseAddress! + offset, iov_len: n))
            offset += n
        }
        return iovecs.withUnsafeBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) }
    }

    /// syslog priorities: 2 crit … 7 debug.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// A swift-log metadata key as a journal field name: `release.id` → `RELEASE_ID`; nil for
    /// keys that cannot be made valid (empty, only punctuation, starting with a digit, over
    /// 64 characters).
    static func fieldName(_ key: String) -> String? {
        var out = ""
        for b in key.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): out.unicodeScalars.append(Unicode.Scalar(b - 32))
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): out.unicodeScalars.append(Unicode.Scalar(b))
            default: out.append("_")
            }
        }
        while out.hasPrefix("_") { out.removeFirst() }
        guard let first = out.first, !first.isNumber, out.utf8.count <= 64 else { return nil }
        return out
    }
}

extension JournalLogHandler: BatchLogHandler {
    /// One journal entry per line, as `log(event:)` would send them.
    func log(lines: LogLines, level: Logger.Level, metadata extra: Logger.Metadata, source: String, file: String,
             function: String, line: UInt) {
        guard level >= logLevel,
              let merged = taskBatchMetadata(lines, level: level, extra: extra, source: source, file: file, function: function, line: line)
        else { return }
        var console = fallback
        console.metadata = metadata
        console.logLevel = logLevel
        for (i, fields) in Self.fields(for: lines, level: level, metadata: merged, identifier: identifier, file: file,
                                       function: function, line: line).enumerated() {
            let event = LogEvent(level: level, message: "\(lines.string(i))", metadata: extra, source: source, file: file,
                                 function: function, line: line)
            JournalWriter.shared.post(.init(fields: fields, fallback: { [console] in console.log(event: event) }))
        }
    }
}
