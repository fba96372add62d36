import Glibc
import ReleaseKit
import ReleaseSupport

/// Writing to stdout and stderr with write(2) (the C `stdout` global is not safe to touch from
/// Swift 6 concurrent code).
enum Output {
    static func out(_ text: String) { write(STDOUT_FILENO, text) }
    static func line(_ text: String) { write(STDOUT_FILENO, text + "\n") }
    static func err(_ text: String) { write(STDERR_FILENO, text) }
    static func error(_ text: String) { write(STDERR_FILENO, "releasectl: " + text + "\n") }

    static func write(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        write(fd, bytes: &bytes)
    }

    static func write(_ fd: Int32, bytes: inout [UInt8]) {
        FileOutput.write(fd, bytes)
    }

    /// Columns padded to their widest cell.
    static func table(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = [Int](repeating: 0, count: first.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            var line = row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
            }.joined(separator: "  ")
            // An empty last column must not leave blanks at the end of the line.
            while line.hasSuffix(" ") { line.removeLast() }
            return line
        }.joined(separator: "\n") + "\n"
    }
}
