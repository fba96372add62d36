import Foundation
import Glibc
import ReleaseKit
import Testing

/// Helpers for the rejection and scheduling tests: raw request files, hostile spool entries
/// (each made in `tmp/` and renamed into `incoming/`, as a writer must), checks of a
/// rejection record, proof that the daemon still serves, and shell barriers for tasks.

/// The JSON text of a request as a writer would drop it, with fields replaced or added
/// (a nil value removes the field).
func rawRequest(id: String, app: String = "shop", release: String = "v1", directory: String,
                changes: [String: Any?] = [:]) -> Data {
    var object: [String: Any] = ["version": 1, "id": id, "app": app, "release": release, "directory": directory]
    for (key, value) in changes {
        if let value { object[key] = value } else { object[key] = nil }
    }
    return try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
}

extension DaemonProcess {
    /// Makes an entry in `tmp/` with `make(path)`, then renames it into `incoming/`.
    func dropEntry(name: String, _ make: (String) throws -> Void) throws {
        let tmp = "\(spoolPath)/tmp/\(name)"
        try make(tmp)
        guard rename(tmp, "\(spoolPath)/incoming/\(name)") == 0 else { throw HarnessError("rename \(name): errno \(errno)") }
    }

    /// A symbolic link named `name` pointing at `target`.
    func dropSymlink(name: String, to target: String) throws {
        try dropEntry(name: name) { path in
            guard symlink(target, path) == 0 else { throw HarnessError("symlink: errno \(errno)") }
        }
    }

    /// A FIFO nobody writes to: a daemon that opened it blocking would hang on it.
    func dropFIFO(name: String) throws {
        try dropEntry(name: name) { path in
            guard mkfifo(path, 0o640) == 0 else { throw HarnessError("mkfifo: errno \(errno)") }
        }
    }

    /// A directory holding a valid-looking request.
    func dropDirectory(name: String, inside: Data) throws {
        try dropEntry(name: name) { path in
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            try createFileOrThrow(path + "/\(name)", inside)
        }
    }

    /// A valid request file that is also hard-linked at `otherLink` (outside the spool's folders).
    func dropHardLink(name: String, contents: Data, otherLink: String) throws {
        try dropEntry(name: name) { path in
            try createFileOrThrow(path, contents)
            guard link(path, otherLink) == 0 else { throw HarnessError("link: errno \(errno)") }
        }
    }

    /// A file whose name is raw bytes (which need not be UTF-8), made in tmp/ and renamed in.
    func dropRawName(_ name: [UInt8], contents: Data) throws {
        func cPath(_ folder: String) -> [CChar] { (Array("\(spoolPath)/\(folder)/".utf8) + name + [0]).map { CChar(bitPattern: $0) } }
        let tmp = cPath("tmp")
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o640)
        guard fd >= 0 else { throw HarnessError("open: errno \(errno)") }
        let written = contents.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == contents.count else { throw HarnessError("write: errno \(errno)") }
        guard rename(tmp, cPath("incoming")) == 0 else { throw HarnessError("rename: errno \(errno)") }
    }

    /// The record file's JSON as written, or nil.
    func rawRecord(_ stem: String, in folder: String = "rejected") throws -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: "\(spoolPath)/\(folder)/\(stem).record.json") else { return nil }
        return try JSONSerialization.jsonObject(with: data) as? [String: Any]
    }

    /// Waits for `rejected/<stem>.record.json` and checks it and the spool: state "rejected",
    /// the reason code, a reason containing `reason`, the request itself moved to
    /// `rejected/<stem>.json` (out of `incoming/`), nothing in `done/` or `running/`, the record
    /// not world-readable. Returns the record's JSON.
    @discardableResult
    func expectRejected(_ stem: String, code: String, reason: String, incomingName: String? = nil,
                        sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String: Any] {
        let path = "\(spoolPath)/rejected/\(stem).record.json"
        // The daemon writes the record first, then moves the request: wait for both.
        try await eventually("rejected/\(stem).record.json and rejected/\(stem).json (daemon log:\n\(log))", timeout: .seconds(20)) {
            FileManager.default.fileExists(atPath: path) && fileExistsNoFollow("\(spoolPath)/rejected/\(stem).json")
        }
        let json = try #require(try rawRecord(stem), "rejected/\(stem).record.json is not a JSON object", sourceLocation: sourceLocation)
        #expect(json["version"] as? Int == 1, sourceLocation: sourceLocation)
        #expect(json["id"] as? String == stem, sourceLocation: sourceLocation)
        #expect(json["state"] as? String == "rejected", sourceLocation: sourceLocation)
        #expect(json["reasonCode"] as? String == code, "\(json)", sourceLocation: sourceLocation)
        let text = json["reason"] as? String ?? ""
        #expect(text.contains(reason), "reason \(text.debugDescription) should contain \(reason.debugDescription)", sourceLocation: sourceLocation)
        #expect(json["finishedAt"] is String, sourceLocation: sourceLocation)
        #expect(json["startedAt"] == nil, "a rejected release never started", sourceLocation: sourceLocation)
        #expect((json["tasks"] as? [Any])?.isEmpty == true, sourceLocation: sourceLocation)
        // The spool: filed away, nothing left behind or run.
        let incoming = incomingName ?? "\(stem).json"
        #expect(!files(in: "incoming").contains(incoming), "\(incoming) is still in incoming/", sourceLocation: sourceLocation)
        #expect(files(in: "running").isEmpty, sourceLocation: sourceLocation)
        #expect(!files(in: "done").contains { $0.hasPrefix(stem) }, sourceLocation: sourceLocation)
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_mode & 0o007 == 0, "the record must not be world-readable", sourceLocation: sourceLocation)
        return json
    }

    /// Proves the daemon still serves: its process is alive and a good release succeeds.
    func expectStillServing(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(isRunning && kill(pid, 0) == 0, "released died (log:\n\(log))", sourceLocation: sourceLocation)
        let app = try AppFixture(commands: ["migrate": "echo still-serving"])
        defer { app.remove() }
        let r = try await submitWait(app: "healthy", release: "check", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        #expect(r.status == 0, "a good release after the rejection: \(r)", sourceLocation: sourceLocation)
        #expect(r.stdout.contains("       still-serving"), sourceLocation: sourceLocation)
        #expect(isRunning, sourceLocation: sourceLocation)
    }

    /// Runs `releasectl wait ID` and returns the result.
    func waitCommand(_ id: String, extra: [String] = []) async throws -> CommandResult {
        try await ctl(["wait", id] + extra)
    }
}

/// Starts a daemon, runs `body` with it, and stops it and removes its spool whether `body`
/// succeeds or throws (no `released` outlives a failed test).
func withRunningDaemon<T>(arguments: [String] = [], spool: TempDir? = nil, _ body: (DaemonProcess) async throws -> T) async throws -> T {
    let daemon = try await DaemonProcess(arguments: arguments, spool: spool)
    do {
        let result = try await body(daemon)
        await daemon.cleanUp()
        return result
    } catch {
        await daemon.cleanUp()
        throw error
    }
}

/// Creates (or truncates) a file with the given contents, throwing when it cannot.
func createFileOrThrow(_ path: String, _ contents: Data?) throws {
    guard FileManager.default.createFile(atPath: path, contents: contents) else { throw HarnessError("cannot create \(path)") }
}

/// Whether a path exists, without following a final symlink.
func fileExistsNoFollow(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0
}

/// A spool folder of its own, with no daemon: `root` is what `--spool` takes.
struct BareSpool {
    let dir: TempDir
    var root: String { dir.path + "/spool" }

    init() throws {
        dir = TempDir("releasectl-spool")
        try Spool(root: .init(root)).create()
    }

    /// Runs `releasectl <arguments> --spool <root>` with only PATH in its environment.
    func ctl(_ arguments: [String], workingDirectory: String? = nil) async throws -> CommandResult {
        try await runProgram(Binaries.releasectl, arguments + ["--spool", root], environment: ["PATH": "/usr/local/bin:/usr/bin:/bin"],
                             inheritEnvironment: false, workingDirectory: workingDirectory)
    }

    /// Every entry of every spool folder (`folder/name`), for "nothing was spooled" checks.
    var allEntries: [String] {
        Spool.Folder.allCases.flatMap { folder in
            ((try? FileManager.default.contentsOfDirectory(atPath: "\(root)/\(folder.rawValue)")) ?? []).map { "\(folder.rawValue)/\($0)" }
        }
    }

    func remove() { dir.remove() }
}

/// Shell snippets that make tasks meet at barriers (flag files), bounded so that a missed
/// barrier fails the task (exit 1) with a message rather than hanging the test.
enum Barrier {
    /// Creates the flag file.
    static func raise(_ path: String) -> String { "touch '\(path)'" }

    /// Waits up to ~20 s for `path` to exist; otherwise prints `message` on stderr and exits 1.
    static func waitFor(_ path: String, else message: String) -> String {
        "i=0; while [ ! -e '\(path)' ]; do i=$((i+1)); if [ $i -gt 400 ]; then echo '\(message)' >&2; exit 1; fi; sleep 0.05; done"
    }

    /// Fails (exit 1, `message` on stderr) unless `path` exists now.
    static func require(_ path: String, else message: String) -> String {
        "[ -e '\(path)' ] || { echo '\(message)' >&2; exit 1; }"
    }

    /// Fails (exit 1, `message` on stderr) if `path` exists now.
    static func forbid(_ path: String, else message: String) -> String {
        "[ ! -e '\(path)' ] || { echo '\(message)' >&2; exit 1; }"
    }
}
