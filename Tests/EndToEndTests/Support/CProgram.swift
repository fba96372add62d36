import Foundation

/// Small C programs the hostile tests need (a set-uid escalator, a shared object that says
/// when it is loaded), built with the system's C compiler (script/bootstrap installs gcc).
enum CProgram {
    /// Compiles `source` into `output` with `flags` (`-static`, `-shared -fPIC`, …).
    static func build(_ source: String, to output: String, flags: [String]) async throws {
        let file = output + ".c"
        try source.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let r = try await runProgram("/usr/bin/cc", flags + ["-o", output, file])
        guard r.status == 0 else { throw HarnessError("cc \(flags.joined(separator: " ")): \(r) (apt-get install gcc libc6-dev)") }
    }
}
