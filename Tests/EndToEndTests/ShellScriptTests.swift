import Foundation
import Testing

/// Every shell script the PaaS integrations ship (integrations/) passes
/// shellcheck (every severity: style and info included). CI installs shellcheck; without it
/// the test is skipped, saying so.
@Suite("shell scripts")
struct ShellScriptTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let shellcheck = ["/usr/bin/shellcheck", "/usr/local/bin/shellcheck"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// The files under integrations/ whose first line names sh or bash.
    static func scripts() -> [String] {
        let base = root + "/integrations"
        let files = (FileManager.default.enumerator(atPath: base)?.allObjects as? [String]) ?? []
        return files.sorted().filter { path in
            guard let handle = FileHandle(forReadingAtPath: base + "/" + path), let head = try? handle.read(upToCount: 64) else { return false }
            let line = String(decoding: head, as: UTF8.self).split(separator: "\n").first ?? ""
            return line.hasPrefix("#!") && (line.hasSuffix("/sh") || line.hasSuffix("bash"))
        }.map { "integrations/" + $0 }
    }

    @Test("integrations/: shellcheck finds nothing", .enabled(if: shellcheck != nil, "shellcheck is not installed (apt-get install shellcheck; script/bootstrap and .ci/run install it)"))
    func shellcheckClean() async throws {
        let scripts = Self.scripts()
        #expect(scripts.contains("integrations/dokku/post-release-builder") && scripts.contains("integrations/kamal/hooks/releasectl-kamal"),
                "the scripts were found: \(scripts)")
        let r = try await runProgram(Self.shellcheck!, ["--external-sources"] + scripts,
                                     workingDirectory: Self.root)
        #expect(r.status == 0, "\(r)")
    }
}
