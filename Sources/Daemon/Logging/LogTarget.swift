import Glibc
import Logging

/// Where the daemon logs: the journal or stderr, never both.
public enum LogTarget: String, CaseIterable, Sendable {
    case auto, journal, console

    public static let journalSocket = "/run/systemd/journal/socket"

    /// `auto`: the journal when systemd connected stderr to it (`JOURNAL_STREAM` names
    /// stderr's device and inode), or when stderr is not a terminal and the journal socket
    /// exists; otherwise the console.
    public func resolved() -> LogTarget {
        guard self == .auto else { return self }
        if let stream = getenv("JOURNAL_STREAM").map({ String(cString: $0) }) {
            var st = stat()
            if fstat(STDERR_FILENO, &st) == 0, stream == "\(st.st_dev):\(st.st_ino)" { return .journal }
        }
        if isatty(STDERR_FILENO) == 0, access(Self.journalSocket, W_OK) == 0 { return .journal }
        return .console
    }

    /// Bootstraps swift-log once for the process.
    public func bootstrap(level: Logger.Level = .info) {
        let target = resolved()
        LoggingSystem.bootstrap { label in
            switch target {
            case .journal:
                var h = JournalLogHandler(label: label)
                h.logLevel = level
                return h
            default:
                var h = ConsoleLogHandler(label: label)
                h.logLevel = level
                return h
            }
        }
    }
}
