import Foundation
import Glibc
import ReleaseKit
import Testing

/// Secrets in task output, where output is cut: a long line's 64 KiB cut, and a request with
/// so many long secrets that masking one by one would stall the daemon.
@Suite("output masking", .serialized)
struct OutputMaskingTests {
    static let token = "SUPERSECRET123"

    /// Every piece of the token of 4 characters or more.
    static var pieces: [String] {
        let chars = Array(token)
        var result: [String] = []
        for length in 4...chars.count {
            for start in 0...(chars.count - length) { result.append(String(chars[start..<(start + length)])) }
        }
        return result
    }

    @Test("a secret straddling a long line's 64 KiB cut is masked in --wait, logs, the journal and the record")
    func secretAtTheCut() async throws {
        try Journal.requireJournald()
        let app = try AppFixture(argv: ["migrate": [
            "python3", "-c", "import os,sys; sys.stdout.write('x'*65530 + os.environ['API_TOKEN'] + '\\n'); sys.stdout.write('end\\n')",
        ]])
        defer { app.remove() }
        let daemon = try await DaemonProcess(arguments: ["--log-target", "journal"])
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true", "API_TOKEN": Self.token])
        #expect(r.status == 0, "\(r.stdout.suffix(500))")
        let id = r.lines[0]
        #expect(r.stdout.contains(String(repeating: "x", count: 65530) + "***"), "the secret is masked whole, on the line it was on")
        let entries = try await Journal.wait(for: "release \(id) to finish", ["RELEASE_ID=\(id)"]) {
            $0.contains { $0["MESSAGE_ID"] == MessageIDs.succeeded }
        }
        let sinks: [(String, String)] = [
            ("submit --wait", r.stdout + r.stderr),
            ("logs", try await daemon.ctl(["logs", id]).stdout),
            ("release log", try String(contentsOfFile: "\(daemon.spoolPath)/logs/\(id).log", encoding: .utf8)),
            ("record", try String(contentsOfFile: "\(daemon.spoolPath)/done/\(id).record.json", encoding: .utf8)),
            ("journal", entries.map(\.json).joined(separator: "\n")),
        ]
        for (sink, text) in sinks {
            for piece in Self.pieces {
                #expect(!text.contains(piece), "\(sink) shows \(piece)")
            }
        }
        #expect(entries.contains { $0["MESSAGE"]?.hasSuffix("xxx***") == true }, "the journal has the masked line")
        await daemon.cleanUp()
    }

    @Test("990 secrets of 1,000 characters and a task printing 300 KB: masked in well under 2 s, the daemon responsive meanwhile")
    func manyLongSecrets() async throws {
        // Secrets that share a long prefix: the worst case for masking one secret at a time.
        let prefix = String(repeating: "k", count: 900)
        var env: [String: String] = ["RUN_MIGRATIONS_DURING_RELEASE": "true"]
        for i in 0..<990 {
            env["APP_\(i)_TOKEN"] = prefix + String(format: "%04d", i) + String(repeating: "z", count: 96)
        }
        let envFile = TempDir()
        defer { envFile.remove() }
        try env.map { "\($0.key)=\($0.value)" }.joined(separator: "\n").write(toFile: envFile.file("many.env"), atomically: true, encoding: .utf8)
        // 300 KB of near misses (the shared prefix, again and again), then two real secrets.
        let app = try AppFixture(argv: ["migrate": [
            "python3", "-c",
            "import os,sys\nw=sys.stdout.write\nfor i in range(300): w('k'*999 + '\\n')\nw('a ' + os.environ['APP_7_TOKEN'] + ' b ' + os.environ['APP_989_TOKEN'] + '\\n')",
        ]])
        let quick = try AppFixture(commands: ["migrate": "echo quick"])
        defer { app.remove(); quick.remove() }
        let daemon = try await DaemonProcess()
        let id = try await daemon.ctl(["submit", "--app", "shop", "--release", "v1", "--dir", app.path, "--env-file", envFile.file("many.env")])
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // Another app's release goes through meanwhile.
        let other = try await daemon.submitWait(app: "other", dir: quick.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(other.status == 0, "\(other)")
        let record = try await daemon.waitForRecord(id, timeout: .seconds(60))
        #expect(record.state == .succeeded, "\(record)")
        let migrate = try #require(record.tasks.first { $0.name == "migrate" })
        // Linear in the output: about 0.2 s here; masking that rescanned per near miss would
        // take minutes. The bound leaves room for a loaded CI machine.
        #expect((migrate.durationMs ?? .max) < 10_000, "the task took \(migrate.durationMs ?? -1) ms")
        let log = try String(contentsOfFile: "\(daemon.spoolPath)/logs/\(id).log", encoding: .utf8)
        #expect(log.contains("a *** b ***"), "\(log.suffix(300))")
        // Each secret ends in its own number and 96 z's, which nothing else prints.
        #expect(!log.contains("zzzzzzzzzzzz"), "a secret's tail is in the log")
        await daemon.cleanUp()
    }
}
