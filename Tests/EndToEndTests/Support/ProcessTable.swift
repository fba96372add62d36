import Foundation

/// Looks through /proc for processes, to prove none outlived what they belonged to.
enum ProcessTable {
    /// Pids whose command line contains `marker` (arguments joined by spaces).
    static func pids(withCommandLineContaining marker: String) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var result: [Int32] = []
        for entry in entries {
            guard let pid = Int32(entry), pid != getpid() else { continue }
            guard let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"), !data.isEmpty else { continue }
            let cmdline = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            if cmdline.contains(marker), !isZombie(pid) { result.append(pid) }
        }
        return result
    }

    /// Pids whose environment holds the entry `entry` (`NAME=value`, exactly).
    static func pids(withEnvironmentContaining entry: String) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        let wanted = Array(entry.utf8)
        return entries.compactMap { name -> Int32? in
            guard let pid = Int32(name), pid != getpid(),
                  let data = FileManager.default.contents(atPath: "/proc/\(name)/environ") else { return nil }
            return Array(data).split(separator: 0).contains { Array($0) == wanted } ? pid : nil
        }
    }

    /// A process's command line, its arguments joined by spaces.
    static func commandLine(of pid: Int32) -> String {
        String(decoding: (FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()).map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
    }

    static func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        let rest = stat[stat.index(close, offsetBy: 2)...]
        return rest.hasPrefix("Z") || rest.hasPrefix("X")
    }

    /// A process's parent (`PPid:` in /proc/<pid>/status).
    static func parent(of pid: Int32) -> Int32? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("PPid:") }) else { return nil }
        return Int32(line.dropFirst(5).trimmingCharacters(in: .whitespaces))
    }

    /// A number to put in a `sleep` so the test can find exactly its own processes.
    static func uniqueSleep() -> Int { Int.random(in: 100_000...999_999) }
}
