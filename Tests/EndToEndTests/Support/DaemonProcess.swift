import Foundation
import CLinuxSyscalls
import Glibc
import ReleaseKit

/// A real `released` on a temporary spool, started with its own `NOTIFY_SOCKET` so the test
/// knows when it is ready, logging to the console (captured in a file).
final class DaemonProcess: @unchecked Sendable {
    // @unchecked: `process` is set once in init and only read afterwards.
    let spool: TempDir
    let notify: NotifySocket
    let process: Process
    let logPath: String
    /// The daemon's pidfd: readable once it has exited, whoever reaps it (see `isRunning`).
    private(set) var pidfd: Int32 = -1
    var spoolPath: String { spool.path + "/spool" }

    /// Starts the daemon and waits for READY=1. `wrapper` runs it through a program that
    /// execs it (`["/usr/bin/env", "-u", "NOTIFY_SOCKET"]`), so `pid` is still the daemon's.
    /// As root, the daemon runs tasks as root only with `--allow-root-tasks`, which the tests
    /// pass unless `allowRootTasks` is false.
    init(arguments: [String] = [], environment: [String: String] = [:], spool existing: TempDir? = nil, waitReady: Bool = true,
         abstractSocket: Bool = false, wrapper: [String] = [], allowRootTasks: Bool = true) async throws {
        spool = existing ?? TempDir("releasectl-spool")
        notify = try NotifySocket(abstract: abstractSocket, directory: spool.path)
        logPath = spool.path + "/released-\(UInt32.random(in: 0...UInt32.max)).log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        process = Process()
        let rootTasks = allowRootTasks && geteuid() == 0 ? ["--allow-root-tasks"] : []
        let command = wrapper + [Binaries.released, "--spool", spool.path + "/spool", "--log-target", "console"] + rootTasks + arguments
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        var env = ["PATH": "/usr/local/bin:/usr/bin:/bin", "NOTIFY_SOCKET": notify.address, "SWIFT_BACKTRACE": "enable=no",
                   "DAEMON_SECRET_MARKER": "daemon-env-must-not-leak"]
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardOutput = FileHandle(forWritingAtPath: logPath)
        process.standardError = FileHandle(forWritingAtPath: logPath)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        pidfd = rc_pidfd_open(process.processIdentifier, 0)
        if waitReady {
            try await notify.wait(for: "READY=1") { $0.fields["READY"] == "1" }
        }
    }

    /// A test that fails before its clean-up does not leave its daemon running: SIGTERM (which
    /// also ends its tasks).
    deinit {
        if isRunning { kill(process.processIdentifier, SIGTERM) }
        if pidfd >= 0 { close(pidfd) }
    }

    var pid: Int32 { process.processIdentifier }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    /// Whether the daemon still runs, by its pidfd (readable once it has exited, before it is
    /// reaped). Foundation's own view (`Process.isRunning`) waits for Foundation to reap it, which
    /// it may not do while another library of this test process takes the SIGCHLDs
    /// (swift-subprocess, behind `runProgram`): a dead daemon would look alive.
    var isRunning: Bool {
        guard pidfd >= 0 else { return process.isRunning }
        var p = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 0) == 0
    }

    /// How the daemon ended (once `isRunning` is false): read from its pidfd without reaping
    /// it (its exit status, or 128 + the signal that ended it), or from Foundation when it has
    /// reaped it already.
    var exitStatus: Int32 {
        var info = siginfo_t()
        if pidfd >= 0, rc_waitid_usage(3 /* P_PIDFD */, pidfd, &info, WEXITED | WNOWAIT, nil) == 0 {
            let status = info._sifields._sigchld.si_status
            return info.si_code == CLD_EXITED ? status : 128 + status
        }
        // Reaped by Foundation: its view is complete once it says so (a moment at most).
        let until = ContinuousClock.now + .seconds(5)
        while process.isRunning && ContinuousClock.now < until { usleep(10_000) }
        return process.isRunning ? -1 : process.terminationStatus
    }

    /// SIGTERM, then waits for the exit (bounded).
    func stop(timeout: Duration = .seconds(60)) async throws {
        guard isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        try await eventually("released to exit after SIGTERM", timeout: timeout) { !self.isRunning }
    }

    func kill9() async throws {
        guard isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        try await eventually("released to die after SIGKILL") { !self.isRunning }
    }

    /// Stops the daemon and removes the spool.
    func cleanUp() async {
        try? await stop()
        notify.close()
        spool.remove()
    }

    /// Runs `releasectl` against this daemon's spool; the environment is empty but for PATH.
    func ctl(_ arguments: [String], environment: [String: String] = [:]) async throws -> CommandResult {
        try await runProgram(Binaries.releasectl, arguments + ["--spool", spoolPath],
                             environment: ["PATH": "/usr/local/bin:/usr/bin:/bin"].merging(environment) { $1 }, inheritEnvironment: false)
    }

    /// `submit --wait` with the given env and tasks.
    func submitWait(app: String, release: String = "v1", dir: String, env: [String: String] = [:], tasks: [String] = [],
                    extra: [String] = []) async throws -> CommandResult {
        var args = ["submit", "--app", app, "--release", release, "--dir", dir, "--wait"]
        for (k, v) in env.sorted(by: { $0.key < $1.key }) { args += ["--env", "\(k)=\(v)"] }
        for t in tasks { args += ["--task", t] }
        return try await ctl(args + extra)
    }

    /// `submit` without waiting; returns the id.
    func submit(app: String, release: String = "v1", dir: String, env: [String: String] = [:], tasks: [String] = []) async throws -> String {
        var args = ["submit", "--app", app, "--release", release, "--dir", dir]
        for (k, v) in env.sorted(by: { $0.key < $1.key }) { args += ["--env", "\(k)=\(v)"] }
        for t in tasks { args += ["--task", t] }
        let r = try await ctl(args)
        guard r.status == 0 else { throw HarnessError("submit failed: \(r)") }
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func record(_ id: String) throws -> ReleaseRecord? {
        for folder in ["done", "rejected"] {
            let p = "\(spoolPath)/\(folder)/\(id).record.json"
            if let data = FileManager.default.contents(atPath: p) { return try ReleaseRecord.decode(Array(data)) }
        }
        return nil
    }

    /// Waits (bounded) for a release's final record.
    func waitForRecord(_ id: String, timeout: Duration = .seconds(30)) async throws -> ReleaseRecord {
        try await eventually("the record of \(id)", timeout: timeout) { try self.record(id) != nil }
        return try record(id)!
    }

    func files(in folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(spoolPath)/\(folder)")) ?? []).sorted()
    }

    /// Drops a raw file into incoming/ the way a writer must (via tmp/ and rename).
    func drop(name: String, contents: Data) throws {
        let tmp = "\(spoolPath)/tmp/\(name)"
        FileManager.default.createFile(atPath: tmp, contents: contents)
        guard rename(tmp, "\(spoolPath)/incoming/\(name)") == 0 else { throw HarnessError("rename: \(errno)") }
    }
}
