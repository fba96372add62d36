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
