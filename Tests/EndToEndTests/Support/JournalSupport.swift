import Foundation
import Glibc
import ReleaseKit
import Synchronization
import Testing

/// The real systemd journal, read back with `journalctl -o json`.
///
/// The journal tests need a journald listening on `/run/systemd/journal/socket`. Where systemd
/// is not PID 1 (CI, containers) `script/journald-start` starts one by hand (as root) and
/// `script/journald-stop` stops it. Without it the tests fail, saying so — they never pass by
/// skipping.
enum Journal {
    static let socket = "/run/systemd/journal/socket"

    /// One journal entry: field name → value (binary values decoded as UTF-8; of a field given
    /// several times, the first value).
    struct Entry: CustomStringConvertible {
        var fields: [String: String]
        /// The entry as journalctl printed it.
        var json: String
        subscript(_ name: String) -> String? { fields[name] }
        var description: String { json }
    }

    /// Throws (failing the test) unless a journald takes entries on the native socket.
    static func requireJournald() throws {
        let advice = "run script/journald-start (as root) first; CI starts it before the tests"
        guard access(socket, F_OK) == 0 else {
            throw HarnessError("no journal socket at \(socket): \(advice)")
        }
        let probe = "MESSAGE=releasectl journal test probe\nPRIORITY=7\nSYSLOG_IDENTIFIER=releasectl-tests\n"
        let error = sendDatagram(Array(probe.utf8), to: socket)
        guard error == 0 else {
            let why = String(cString: strerror(error))
            throw HarnessError("stale journal socket \(socket) (\(why)): \(advice)")
        }
    }

    /// The journal's cursor now: what `entries(_:after:)` counts from. A check that a process
    /// logged nothing matches its `_PID` after a cursor taken before it started, as the kernel
    /// reuses PIDs and the journal keeps the entries of earlier processes that had the same one.
    static func cursor() async throws -> String {
        let r = try await runProgram("/usr/bin/journalctl", ["-n", "0", "--show-cursor", "--no-pager"], inheritEnvironment: true)
        let marker = "-- cursor: "
        guard r.status == 0, let line = r.stdout.split(separator: "\n").last(where: { $0.hasPrefix(marker) }) else {
            throw HarnessError("journalctl --show-cursor printed no cursor: \(r)")
        }
        return String(line.dropFirst(marker.count))
    }

    /// `journalctl <matches> -o json`, in journal order; with `after`, only the entries logged
    /// after that cursor.
    static func entries(_ matches: [String], after cursor: String? = nil) async throws -> [Entry] {
        let since = cursor.map { ["--after-cursor=\($0)"] } ?? []
        let r = try await runProgram("/usr/bin/journalctl", matches + since + ["-o", "json", "--no-pager", "--all"], inheritEnvironment: true)
        // journalctl exits 1 when nothing matches yet on some versions; output tells.
        guard r.status == 0 || r.stdout.isEmpty else { throw HarnessError("journalctl \(matches): \(r)") }
        return r.stdout.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            var fields: [String: String] = [:]
            for (name, value) in object {
                fields[name] = text(of: value)
            }
            return Entry(fields: fields, json: String(line))
        }
    }

    /// Polls `journalctl <matches>` until `done` holds for the entries (journald may take a
    /// moment to make new entries visible), bounded by `timeout`.
    static func wait(for what: String, _ matches: [String], timeout: Duration = .seconds(20),
                     until done: ([Entry]) -> Bool) async throws -> [Entry] {
        var last: [Entry] = []
        let clock = ContinuousClock()
        let until = clock.now + timeout
        while clock.now < until {
            last = try await entries(matches)
            if done(last) { return last }
            try await Task.sleep(for: .milliseconds(100))
        }
        let shown = last.map { "\($0["MESSAGE"] ?? "")" }.joined(separator: "\n  ")
        Issue.record("timed out after \(timeout) waiting for journal entries: \(what) (journalctl \(matches.joined(separator: " ")) has \(last.count):\n  \(shown))")
        throw HarnessError("timed out waiting for journal entries: \(what)")
    }

    /// journalctl's JSON value: a string, an array of bytes (binary), or an array of values
    /// (a field given several times).
    private static func text(of value: Any) -> String? {
        if let s = value as? String { return s }
        if let bytes = value as? [Int] { return String(decoding: bytes.map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self) }
        if let many = value as? [Any], let first = many.first { return text(of: first) }
        return nil
    }
}

/// The daemon's MESSAGE_IDs (Sources/Daemon/Systemd/MessageID.swift; the test target cannot
/// import the executable).
enum MessageIDs {
    static let started = "1bf7496297ab4decad338e40114bfe32"
    static let succeeded = "3d8e5ccf4805415186be0ff8e96b9ac4"
    static let failed = "f0a2e52c71664604868356475a44e60e"
    static let cancelled = "059a9aeb42e946f3be1947dd835e4e4b"
    static let interrupted = "5a73f194e1064f5b9228157b92c59f33"
    static let rejected = "dfbf08f353364db5bb810d358efad0ff"
    static let all = [started, succeeded, failed, cancelled, interrupted, rejected]
}

/// The MESSAGE_IDs `systemd/released.catalog` describes, with their `Subject:` lines.
enum Catalog {
    static let path: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("systemd/released.catalog").path
    }()

    static func subjects() throws -> [String: String] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var out: [String: String] = [:]
        var current: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("-- ") {
                current = String(line.dropFirst(3)).trimmingCharacters(in: .whitespaces)
            } else if let id = current, line.hasPrefix("Subject: ") {
                out[id] = String(line.dropFirst("Subject: ".count))
                current = nil
            }
        }
        return out
    }
}

/// Sends one datagram to a unix socket path; 0 or the errno.
func sendDatagram(_ bytes: [UInt8], to path: String) -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return errno }
    defer { close(fd) }
    var addr = sockaddr_un()
    guard fill(&addr, path) else { return ENAMETOOLONG }
    let n = withUnsafePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { a in
            bytes.withUnsafeBytes { b in sendto(fd, b.baseAddress, b.count, 0, a, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
    return n < 0 ? errno : 0
}

/// Leaves a unix socket file at `path` that nobody listens on any more (a stale socket, as a
/// journald that died leaves behind).
func makeStaleSocket(at path: String) throws {
    let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw HarnessError("socket: \(errno)") }
    defer { close(fd) }
    var addr = sockaddr_un()
    guard fill(&addr, path) else { throw HarnessError("path too long: \(path)") }
    let rc = withUnsafePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard rc == 0 else { throw HarnessError("bind \(path): \(errno)") }
}

private func fill(_ addr: inout sockaddr_un, _ path: String) -> Bool {
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    return withUnsafeMutableBytes(of: &addr.sun_path) { p in
        guard bytes.count < p.count else { return false }
        for (i, b) in bytes.enumerated() { p[i] = b }
        p[bytes.count] = 0
        return true
    }
}

/// Runs `releasectl submit` on a spool no daemon serves; returns the new id.
func submitOffline(spool: String, app: String, release: String, dir: String, env: [String: String] = [:]) async throws -> String {
    var args = ["submit", "--app", app, "--release", release, "--dir", dir, "--spool", spool]
    for (k, v) in env.sorted(by: { $0.key < $1.key }) { args += ["--env", "\(k)=\(v)"] }
    let r = try await runProgram(Binaries.releasectl, args, environment: ["PATH": "/usr/bin:/bin"], inheritEnvironment: false)
    guard r.status == 0 else { throw HarnessError("submit failed: \(r)") }
    return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// An unprivileged uid that no account has (and the gid of the same number). No test runs tasks as
/// it, so no test's daemon ends a process of it as a task's leftover: a daemon ends every process
/// of a task's user started since the task (`HostExecutor.endEscapees`), and the tests that run
/// tasks as nobody run beside the others.
enum LoneUser {
    static let id: uid_t = {
        var uid: uid_t = 64_999
        while UserDatabase.user(id: uid) != nil { uid -= 1 }
        return uid
    }()
}

/// Wrappers that exec the daemon in a changed setting (see `DaemonProcess(wrapper:)`).
enum Launch {
    /// Sets `WATCHDOG_PID` to the daemon's own pid, as systemd does.
    static let ownWatchdogPID = ["/bin/sh", "-c", "export WATCHDOG_PID=$$; exec \"$@\"", "sh"]
    /// No `NOTIFY_SOCKET` at all: outside systemd.
    static let withoutNotifySocket = ["/usr/bin/env", "-u", "NOTIFY_SOCKET"]
    /// As `LoneUser`'s uid and gid, with no supplementary groups.
    static let asLoneUser = ["/usr/bin/setpriv", "--reuid=\(LoneUser.id)", "--regid=\(LoneUser.id)", "--clear-groups"]
    /// With stderr on a terminal: the slave side of `terminal`.
    static func withStderr(on terminal: PseudoTerminal) -> [String] {
        ["/bin/sh", "-c", "exec \"$@\" 2>\"$0\"", terminal.slavePath]
    }

    /// In a private mount namespace whose /run is empty: no journal socket at all, or (with
    /// `staleSocket`) a socket file nobody listens on at /run/systemd/journal/socket.
    static func withoutJournal(staleSocket: String?) -> [String] {
        let script = """
            mount -t tmpfs -o mode=0755 releasectl-test /run && mkdir -p /run/systemd/journal && \
            if [ "$0" != - ]; then touch /run/systemd/journal/socket && mount --bind "$0" /run/systemd/journal/socket; fi && \
            exec "$@"
            """
        return ["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, staleSocket ?? "-"]
    }
}

/// CLOCK_MONOTONIC in microseconds (what `MONOTONIC_USEC=` is measured in).
func monotonicMicroseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
}

/// A pseudo-terminal the test holds: a program writing to `slavePath` writes to a terminal
/// (`isatty` is true); what it writes is collected from the master side.
final class PseudoTerminal: Sendable {
    let slavePath: String
    private let master: Int32
    private let output = Mutex<[UInt8]>([])
    private let closed = Atomic<Bool>(false)

    init() throws {
        // posix_openpt, unlockpt and ptsname by hand (the Glibc module does not export them):
        // TIOCSPTLCK and TIOCGPTN, Linux's ioctls behind them.
        let TIOCSPTLCK: UInt = 0x4004_5431, TIOCGPTN: UInt = 0x8004_5430
        master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        var unlock: CInt = 0
        var number: CInt = 0
        guard master >= 0, ioctl(master, TIOCSPTLCK, &unlock) == 0, ioctl(master, TIOCGPTN, &number) == 0 else {
            throw HarnessError("cannot open a pseudo-terminal: \(errno)")
        }
        slavePath = "/dev/pts/\(number)"
        let fd = master
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while !closed.load(ordering: .relaxed) {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                if poll(&p, 1, 100) <= 0 { continue }
                // EIO: no process has the slave open (yet, or any more).
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n > 0 { output.withLock { $0.append(contentsOf: buffer[0..<n]) } } else { usleep(20_000) }
            }
        }
    }

    /// Everything written to the terminal so far.
    var text: String { output.withLock { String(decoding: $0, as: UTF8.self) } }

    func close() {
        if !closed.exchange(true, ordering: .relaxed) {
            Thread.sleep(forTimeInterval: 0.15)
            Glibc.close(master)
        }
    }
}
