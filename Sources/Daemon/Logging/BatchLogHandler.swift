import Logging
import ReleaseKit

/// Lines of a task's output, already masked (see `MaskedLineSplitter`).
typealias LogLines = MaskedLineSplitter.Lines

/// A log handler that takes many entries at once: a chunk of a task's output, each line its
/// own entry at one level with one set of metadata. The result must be what `log(event:)`
/// once per line would give; the handler only does the shared work (time, context, metadata,
/// the write) once per batch.
protocol BatchLogHandler: LogHandler {
    func log(lines: LogLines, level: Logger.Level, metadata: Logger.Metadata, source: String, file: String, function: String,
             line: UInt)
}

extension BatchLogHandler {
    /// The metadata of a batch that is a task's output (the handler's with `extra` merged);
    /// nil for any other batch, whose lines are then logged one by one with `log(event:)`.
    func taskBatchMetadata(_ lines: LogLines, level: Logger.Level, extra: Logger.Metadata, source: String, file: String,
                           function: String, line: UInt) -> Logger.Metadata? {
        var merged = metadata
        merged.merge(extra) { $1 }
        if merged["release.app"] != nil, let task = merged["release.task"], !"\(task)".isEmpty { return merged }
        for i in lines.ranges.indices {
            log(event: LogEvent(level: level, message: "\(lines.string(i))", metadata: extra, source: source, file: file,
                                function: function, line: line))
        }
        return nil
    }
}
