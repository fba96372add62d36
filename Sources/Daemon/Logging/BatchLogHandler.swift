import Logging

/// Lines of a task's output, already masked: one buffer and the range of each line in it
/// (without its newline).
struct LogLines: Sendable {
    var bytes: [UInt8]
    var ranges: [Range<Int>]

    /// The line as text (invalid UTF-8 replaced, as `String(decoding:as:)` does).
    func string(_ index: Int) -> String {
        String(decoding: bytes[ranges[index]], as: UTF8.self)
    }
}

/// A log handler that takes many entries at once: a chunk of a task's output, each line its
/// own entry at one level with one set of metadata. The result must be what `log(event:)`
/// once per line would give; the handler only does the shared work (time, context, metadata,
/// the write) once per batch.
protocol BatchLogHandler: LogHandler {
    func log(lines: LogLines, level: Logger.Level, metadata: Logger.Metadata, source: String, file: String, function: String,
             line: UInt)
}
