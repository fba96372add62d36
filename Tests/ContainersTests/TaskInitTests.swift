import Foundation
import Glibc
import ReleaseContainers
import ReleaseSupport
import Testing

/// `releasectl-init`'s messages and reports, and the program itself, run on the host as a
/// container would run it (no engine needed), and the daemon's rules for finding it.
@Suite("task init")
struct TaskInitTests {
    /// A task message read back by its own rules: type, length, counts, length-prefixed strings.
    static func decode(_ bytes: [UInt8]) -> (argv: [String], environment: [String])? {
        func u32(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24 }
        guard bytes.count >= 13, bytes[0] == UInt8(ascii: "T"), u32(1) == bytes.count - 5 else { return nil }
        let argc = u32(5), envc = u32(9)
        var at = 13
        var strings: [String] = []
        for _ in 0..<(argc + envc) {
            guard at + 4 <= bytes.count else { return nil }
            let n = u32(at)
            guard at + 4 + n <= bytes.count else { return nil }
            strings.append(String(decoding: bytes[(at + 4)..<(at + 4 + n)], as: UTF8.self))
            at += 4 + n
        }
        guard at == bytes.count else { return nil }
        return (Array(strings.prefix(argc)), Array(strings.dropFirst(argc)))
    }

    @Test("a task message carries argv and every variable exactly: line breaks, '=' signs, empty values and arguments, in name order")
    func message() throws {
        let environment = ["PEM": "-----BEGIN-----\nabc=\n-----END-----\n", "B": "x=y=z", "EMPTY": "", "A": "1"]
        let bytes = TaskInit.task(argv: ["/bin/sh", "-c", "echo \"$PEM\"", ""], environment: environment)
        let decoded = try #require(Self.decode(bytes))
        #expect(decoded.argv == ["/bin/sh", "-c", "echo \"$PEM\"", ""])
        #expect(decoded.environment == ["A=1", "B=x=y=z", "EMPTY=", "PEM=-----BEGIN-----\nabc=\n-----END-----\n"])
        #expect(TaskInit.signal(SIGTERM) == [UInt8(ascii: "S"), 4, 0, 0, 0, 15, 0, 0, 0])
        #expect(TaskInit.key("ab12") == [UInt8(ascii: "K"), 4, 0, 0, 0] + Array("ab12".utf8))
    }

    @Test("reports parse: ready, limits changed, an exit, a signal, a start that failed (code, errno, a known step), fatal; anything else, or figures past their bounds, is no report")
    func reports() {
        #expect(TaskInit.Report("ready") == .ready)
        #expect(TaskInit.Report("limits-changed") == .limitsChanged)
        #expect(TaskInit.Report("ended exit 3 cpu_us 1500 maxrss_kb 900") == .ended(.exited(3), cpuMicros: 1500, maxRSSKiB: 900))
        #expect(TaskInit.Report("ended signal 9 cpu_us 0 maxrss_kb 1") == .ended(.signaled(9), cpuMicros: 0, maxRSSKiB: 1))
        #expect(TaskInit.Report("failed 127 2 exec") == .failed(code: 127, errno: ENOENT, step: .exec))
        #expect(TaskInit.Report("failed 126 1 setuid") == .failed(code: 126, errno: EPERM, step: .setuid))
        #expect(TaskInit.Report("fatal a malformed task") == .fatal("a malformed task"))
        for bad in ["", "ended", "ended exit 256 cpu_us 1 maxrss_kb 1", "ended signal 0 cpu_us 1 maxrss_kb 1", "ended exit 0 cpu_us -1 maxrss_kb 1",
                    "ended exit 0 cpu_us 1 maxrss_kb 1 more", "failed 1 2 exec", "failed x 2 exec", "ended exit 0 maxrss_kb 1 cpu_us 1",
                    "failed 127 2 command not found: x", "failed 127 -2 exec", "failed 126 2 exec more", "ready ", "READY",
                    "ended exit 0 cpu_us 9007199254740993 maxrss_kb 1", "ended exit 0 cpu_us 1 maxrss_kb 1099511627777",
                    "ended exit 0 cpu_us 1 maxrss_kb 99999999999999999999"] {
            #expect(TaskInit.Report(Substring(bad)) == nil, "\(bad)")
        }
        // What a failed start says comes from the daemon's copy of the command, not the report.
        #expect(TaskInit.startFailure(errno: ENOENT, step: .exec, program: "rake", path: "/usr/bin") == "command not found: rake (PATH=/usr/bin)")
        #expect(TaskInit.startFailure(errno: EACCES, step: .exec, program: "/etc/passwd", path: nil) == "cannot run /etc/passwd: Permission denied")
    }

    /// The scanner over `chunks`: the output it let through, and the reports.
    static func scan(_ chunks: [[UInt8]], key: String = "k3y") -> (output: [UInt8], reports: [TaskInit.Report?]) {
        var scanner = ReportScanner(key: key)
        var output: [UInt8] = []
        var reports: [TaskInit.Report?] = []
        for chunk in chunks {
            for piece in chunk.withUnsafeBytes({ scanner.scan($0) }) {
                switch piece {
                case .output(let bytes): output += bytes
                case .report(let report): reports.append(report)
                }
            }
        }
        return (output, reports)
    }

    @Test("the scanner takes reports out of a stream cut anywhere; a marker without the key, or a stray \\u{1E}, is output")
    func scanner() {
        let stream = Array("one\u{1E}two\u{1E}releasectl-init other ended exit 0 cpu_us 1 maxrss_kb 1\nno newline\u{1E}releasectl-init k3y ended exit 4 cpu_us 20 maxrss_kb 30\nafter\u{1E}\u{1E}releasectl-init k3y failed 127 2 exec\n".utf8)
        let expected = Array("one\u{1E}two\u{1E}releasectl-init other ended exit 0 cpu_us 1 maxrss_kb 1\nno newlineafter\u{1E}".utf8)
        let reports: [TaskInit.Report?] = [.ended(.exited(4), cpuMicros: 20, maxRSSKiB: 30), .failed(code: 127, errno: ENOENT, step: .exec)]
        // Whole, byte by byte, and cut at every place.
        var cuts: [[[UInt8]]] = [[stream], stream.map { [$0] }]
        for at in 1..<stream.count { cuts.append([Array(stream[..<at]), Array(stream[at...])]) }
        for chunks in cuts {
            let r = Self.scan(chunks)
            #expect(r.output == expected, "\(chunks.map(\.count))")
            #expect(r.reports == reports, "\(chunks.map(\.count))")
        }
        // A report too long to be one is no report; the stream goes on.
        let long = Self.scan([Array("\u{1E}releasectl-init k3y \(String(repeating: "x", count: 20000))\nrest".utf8)])
        #expect(long.reports == [nil] && long.output == Array("rest".utf8))
    }

    /// The built program (script/build-init puts it beside `released`), or nil when not built.
    static var program: String? {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = ProcessInfo.processInfo.environment["RELEASECTL_BIN_DIR"].map { $0 + "/releasectl-init" }
            ?? root.appendingPathComponent(".build/debug/releasectl-init").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    /// The program running as a container's init would: PID 1 of a PID namespace of its own
    /// (`unshare`), messages in, output and reports out.
    final class Running {
        let process = Process()
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        var scanner = ReportScanner(key: "none")
        var output: [UInt8] = []
        /// The key of the task running or last run.
        var key = ""
        /// Whether the init said `ready`, and `limits-changed` (after the last task).
        var ready = false
        var limitsChanged = false

        init(environment: [String: String] = ["IMAGE_ENV": "from the image", "A": "image's"], pid1: Bool = true) throws {
            let program = try #require(TaskInitTests.program, "releasectl-init is not built: run script/build-init (script/test does)")
            signal(SIGPIPE, SIG_IGN)
            if pid1 {
                process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
                process.arguments = (geteuid() == 0 ? [] : ["--user", "--map-root-user"]) + ["--pid", "--fork", "--kill-child", program]
            } else {
                process.executableURL = URL(fileURLWithPath: program)
            }
            process.environment = environment
            process.standardInput = stdin
            process.standardOutput = stdout
            process.standardError = stderr
            try process.run()
        }

        /// Writes to its stdin (a program that has exited already makes it fail, not crash:
        /// SIGPIPE is ignored in the test process).
        func send(_ bytes: [UInt8]) { try? stdin.fileHandleForWriting.write(contentsOf: Data(bytes)) }

        /// Sends a task, with a new key of its own, as the daemon does.
        func start(_ argv: [String], _ environment: [String: String] = ["PATH": "/usr/bin:/bin"]) {
            key = "k" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
            scanner = ReportScanner(key: key)
            limitsChanged = false
            send(TaskInit.key(key) + TaskInit.task(argv: argv, environment: environment))
        }

        /// Reads until the task's report (ended, failed or fatal): its output and the report.
        func finish() throws -> (output: String, report: TaskInit.Report?) {
            output = []
            while true {
                let data = stdout.fileHandleForReading.availableData
                if data.isEmpty { throw HarnessFailure("the program ended before it reported: \(String(decoding: output, as: UTF8.self))") }
                for piece in Array(data).withUnsafeBytes({ scanner.scan($0) }) {
                    switch piece {
                    case .output(let bytes): output += bytes
                    case .report(.ready?): ready = true
                    case .report(.limitsChanged?): limitsChanged = true
                    case .report(let report): return (String(decoding: output, as: UTF8.self), report)
                    }
                }
            }
        }

        /// Runs a task: its output and its report.
        func run(_ argv: [String], _ environment: [String: String] = ["PATH": "/usr/bin:/bin"]) throws -> (output: String, report: TaskInit.Report?) {
            start(argv, environment)
            return try finish()
        }

        /// Closes stdin; how the program exited, and its stderr.
        func end() -> (status: Int32, errors: String) {
            try? stdin.fileHandleForWriting.close()
            let errors = stderr.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: errors, as: UTF8.self))
        }
    }

    struct HarnessFailure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    @Test("tasks run one after another in one program: each with the image's environment and its own over it, stdin /dev/null, its own report", .enabled(if: program != nil))
    func runsTasks() throws {
        let init_ = try Running()
        let script = "printf 'A=%s IMAGE_ENV=%s PEM=[%s] args=%s stdin=%s\\n' \"$A\" \"$IMAGE_ENV\" \"$PEM\" \"$#\" \"$(wc -c)\"; echo to-stderr >&2"
        let first = try init_.run(["sh", "-c", script, "x", "y"], ["A": "task's", "PEM": "l1\nl2", "PATH": "/usr/bin:/bin"])
        #expect(init_.ready, "no ready report on the first key")
        #expect(first.output == "A=task's IMAGE_ENV=from the image PEM=[l1\nl2] args=1 stdin=0\nto-stderr\n", "\(first)")
        guard case .ended(.exited(0), _, _)? = first.report else { Issue.record("\(first)"); return }
        // The second task sees none of the first's variables.
        let second = try init_.run(["sh", "-c", "echo \"A=${A:-unset} PEM=${PEM:-unset}\"; exit 3"])
        #expect(second.output == "A=image's PEM=unset\n")
        guard case .ended(.exited(3), _, _)? = second.report else { Issue.record("\(second)"); return }
        let killed = try init_.run(["sh", "-c", "kill -9 $$"])
        guard case .ended(.signaled(9), _, _)? = killed.report else { Issue.record("\(killed)"); return }
        let missing = try init_.run(["no-such-program-xyz"], ["PATH": "/nonexistent"])
        #expect(missing.report == .failed(code: 127, errno: ENOENT, step: .exec), "\(missing)")
        let notExecutable = try init_.run(["/etc/passwd"])
        #expect(notExecutable.report == .failed(code: 126, errno: EACCES, step: .exec), "\(notExecutable)")
        let end = init_.end()
        #expect(end.status == 0 && end.errors.isEmpty, "\(end)")
    }

    @Test("a command name an image author wrote (an escape sequence, a carriage return, a secret) is in no report: the daemon words the failure from its own copy, masked, on one line", .enabled(if: program != nil))
    func hostileCommandName() throws {
        let secret = "s3cr3t-\(UInt32.random(in: 0...UInt32.max))"
        let name = "no-such-\u{1B}[2J\r\(secret)"
        let init_ = try Running()
        init_.start([name], ["PATH": "/nonexistent"])
        var raw: [UInt8] = []
        var report: TaskInit.Report??
        while report == nil {
            let data = Array(init_.stdout.fileHandleForReading.availableData)
            if data.isEmpty { break }
            raw += data
            for piece in data.withUnsafeBytes({ init_.scanner.scan($0) }) {
                if case .report(let r) = piece, r != .ready { report = .some(r) }
            }
        }
        #expect(report == .some(.failed(code: 127, errno: ENOENT, step: .exec)))
        let text = String(decoding: raw, as: UTF8.self)
        #expect(!text.contains(secret) && !text.contains("\u{1B}"), "the init wrote the command's name: \(text.debugDescription)")
        // What the daemon makes of it (ContainerExecutor: the mask over it, then one line).
        let said = Quoting.line(TaskInit.startFailure(errno: ENOENT, step: .exec, program: name, path: "/nonexistent")
            .replacingOccurrences(of: secret, with: "***"))
        #expect(said == "command not found: no-such-\\u{1b}[2J\\r*** (PATH=/nonexistent)", "\(said)")
        _ = init_.end()
    }

    @Test("a signal message reaches the running task's whole group, and what the task left in it is ended before its report", .enabled(if: program != nil))
    func signalsAndLeftovers() throws {
        let init_ = try Running()
        let marker = "\(UInt32.random(in: 100_000...999_999))"
        // The task traps TERM, so the report shows it ran its trap; its background sleep got TERM too.
        init_.start(["sh", "-c", "trap 'echo got TERM; exit 143' TERM; echo ready; sleep 3\(marker) & wait"])
        var seen = ""
        while !seen.contains("ready\n") {
            for piece in Array(init_.stdout.fileHandleForReading.availableData).withUnsafeBytes({ init_.scanner.scan($0) }) {
                if case .output(let b) = piece { seen += String(decoding: b, as: UTF8.self) }
            }
        }
        init_.send(TaskInit.signal(SIGTERM))
        let stopped = try init_.finish()
        #expect(stopped.output.contains("got TERM"))
        guard case .ended(.exited(143), _, _)? = stopped.report else { Issue.record("\(stopped)"); return }
        #expect(!Self.running("sleep 3\(marker)"), "the task's background process outlived the signal")
        // A task that leaves processes, in its group and in a session of their own: all gone
        // once the report is in (the init, their PID 1, reaped them).
        let left = try init_.run(["sh", "-c", "sleep 4\(marker) & setsid sleep 5\(marker) & echo left"])
        #expect(left.output == "left\n")
        #expect(!Self.running("sleep 4\(marker)") && !Self.running("sleep 5\(marker)"), "a task's process outlived it")
        _ = init_.end()
    }

    /// Whether a process with `text` in its command line runs.
    static func running(_ text: String) -> Bool {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return pids.contains { pid in
            guard Int(pid) != nil, let cmd = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: cmd.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(text)
        }
    }

    @Test("a report's figures are the task's own: its peak within 2 MiB (or 10 %) of what /usr/bin/time -v says, for a tiny command and one touching 100 MiB", .enabled(if: program != nil && FileManager.default.isExecutableFile(atPath: "/usr/bin/time")))
    func ownFigures() throws {
        let init_ = try Running()
        let touch = ["/usr/bin/python3", "-c", "b = bytearray(100 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"]
        for argv in [["/bin/true"], ["/bin/sh", "-c", "rm -rf /nonexistent/x && mkdir -p /nonexistent/y; echo done"], touch] {
            let ours = try init_.run(argv)
            guard case .ended(_, _, let kib)? = ours.report else { Issue.record("\(ours)"); continue }
            let theirs = try Self.timeMaxRSS(argv)
            #expect(abs(kib - theirs) <= max(2048, theirs / 10), "\(argv): reported \(kib) KiB, /usr/bin/time -v \(theirs) KiB")
        }
        _ = init_.end()
    }

    /// `/usr/bin/time -v`'s "Maximum resident set size" of a command, in KiB.
    static func timeMaxRSS(_ argv: [String]) throws -> Int64 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/time")
        process.arguments = ["-v"] + argv
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let line = try #require(text.split(separator: "\n").first { $0.contains("Maximum resident set size") })
        return try #require(Int64(line.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)))
    }

    @Test("messages cut short, foreign or too long run nothing and say why on stderr", .enabled(if: program != nil))
    func refusals() throws {
        func run(_ input: [UInt8]) throws -> (status: Int32, errors: String, output: String) {
            let init_ = try Running()
            init_.send(input)
            let end = init_.end()
            return (end.status, end.errors, String(decoding: init_.stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        }
        let full = TaskInit.task(argv: ["sh", "-c", "echo ran"], environment: ["PATH": "/usr/bin:/bin"])
        let cut = try run(Array(full.dropLast(3)))
        #expect(cut.status == 126 && cut.errors == "releasectl-init: a message was cut short; not running it\n", "\(cut)")
        let foreign = try run(Array("GET / HTTP/1.0\r\n\r\n".utf8))
        #expect(foreign.status == 126 && foreign.errors == "releasectl-init: stdin does not hold releasectl's messages\n", "\(foreign)")
        let huge = try run([UInt8(ascii: "T"), 0xff, 0xff, 0xff, 0x0f])  // a message "of" 256 MiB
        #expect(huge.status == 126 && huge.errors.contains("over the limit"), "\(huge)")
        let badKey = try run(TaskInit.key("no spaces"))
        #expect(badKey.status == 126 && badKey.errors.contains("a malformed key"), "\(badKey)")
        // Once it has a key, it says so as a report of that key (the daemon trusts nothing else).
        let keyed = try run(TaskInit.key("k1") + Array(full.dropLast(3)))
        #expect(keyed.status == 126 && keyed.errors.isEmpty, "\(keyed)")
        #expect(keyed.output == "\u{1E}releasectl-init k1 ready\n\u{1E}releasectl-init k1 fatal a message was cut short; not running it\n", "\(keyed)")
        for r in [cut, foreign, huge, badKey, keyed] { #expect(!r.output.contains("ran")) }
    }

    @Test("it runs tasks only as PID 1 (the engine's own init in front of it, or the host's pids, would leave what a task starts out of its reach)", .enabled(if: program != nil))
    func onlyAsPID1() throws {
        let init_ = try Running(pid1: false)
        init_.send(TaskInit.key("k1") + TaskInit.task(argv: ["sh", "-c", "echo ran"], environment: ["PATH": "/usr/bin:/bin"]))
        let end = init_.end()
        let output = String(decoding: init_.stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(end.status == 126 && end.errors.contains("releasectl-init: not the container's first process"), "\(end)")
        #expect(output.isEmpty, "\(output)")
    }

    @Test("a task that changes its init's limits, nice value or CPU affinity (it may: the same user) is reported, so that no next task inherits them", .enabled(if: program != nil))
    func limitsChanged() throws {
        let init_ = try Running()
        let clean = try init_.run(["sh", "-c", "echo hi"])
        #expect(!init_.limitsChanged, "\(clean)")
        for change in ["prlimit --pid 1 --nofile=64:64", "prlimit --pid 1 --fsize=1024:1024", "renice -n 5 -p 1 >/dev/null",
                       "taskset -p 1 1 >/dev/null"] {
            let r = try init_.run(["sh", "-c", change])
            guard case .ended(.exited(0), _, _)? = r.report else { Issue.record("\(change): \(r)"); continue }
            #expect(init_.limitsChanged, "\(change) went unreported")
        }
        _ = init_.end()
    }

    @Test("a report of an earlier task's key, printed by a later task (say its key leaked), is that task's output, not its end", .enabled(if: program != nil))
    func earlierKeyIsOutput() throws {
        let init_ = try Running()
        _ = try init_.run(["true"])
        let earlier = init_.key
        let forged = "\u{1E}releasectl-init \(earlier) ended exit 0 cpu_us 1 maxrss_kb 1"
        let r = try init_.run(["sh", "-c", "printf '%s\\n' '\(forged)'; sleep 0.2; exit 5"])
        #expect(r.output == forged + "\n", "\(r)")
        guard case .ended(.exited(5), _, _)? = r.report else { Issue.record("\(r)"); return }
        _ = init_.end()
    }

    @Test("what a task's message took is not the next task's: after five tasks with 1 MB environments a `true` peaks as in a fresh init", .enabled(if: program != nil))
    func messagesNotInherited() throws {
        func truePeak(_ init_: Running) throws -> Int64 {
            guard case .ended(_, _, let kib)? = try init_.run(["true"]).report else { throw HarnessFailure("no report") }
            return kib
        }
        let fresh = try Running()
        let baseline = try truePeak(fresh)
        _ = fresh.end()
        let used = try Running()
        // (Ten variables of 100 KB each: one string over 128 KiB is more than exec takes.)
        var big = ["PATH": "/usr/bin:/bin"]
        for j in 0..<10 { big["BIG\(j)"] = String(repeating: "x", count: 100_000) }
        for _ in 0..<5 {
            let r = try used.run(["true"], big)
            guard case .ended(.exited(0), _, _)? = r.report else { throw HarnessFailure("\(r)") }
        }
        let after = try truePeak(used)
        #expect(after <= baseline + 512, "true peaked at \(after) KiB after large messages, \(baseline) KiB in a fresh init")
        _ = used.end()
    }

    /// Pids (on this host) whose parent is `parent`, with their state letter.
    static func children(of parent: Int32) -> [(pid: Int32, state: Character)] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry -> (Int32, Character)? in
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            guard fields.count > 1, Int32(fields[1]) == parent, let state = fields[0].first else { return nil }
            return (pid, state)
        }
    }

    @Test("what a task leaves is reaped as it ends, while the task still runs: no zombie holds a pid under the container's limit", .enabled(if: program != nil))
    func orphansReapedWhileTaskRuns() throws {
        let init_ = try Running()
        init_.start(["sh", "-c", "(true &); (true &); (true &); echo started; sleep 3"])
        var seen = ""
        while !seen.contains("started\n") {
            for piece in Array(init_.stdout.fileHandleForReading.availableData).withUnsafeBytes({ init_.scanner.scan($0) }) {
                if case .output(let b) = piece { seen += String(decoding: b, as: UTF8.self) }
            }
        }
        // The init is unshare's child; its children are the task and, for a moment, the orphans.
        let initPid = try #require(Self.children(of: init_.process.processIdentifier).first?.pid)
        let until = Date().addingTimeInterval(1.5)
        var zombies = Self.children(of: initPid).filter { $0.state == "Z" }
        while !zombies.isEmpty && Date() < until {
            usleep(20_000)
            zombies = Self.children(of: initPid).filter { $0.state == "Z" }
        }
        #expect(zombies.isEmpty, "zombies under the init while the task runs: \(zombies.map(\.pid))")
        let r = try init_.finish()
        guard case .ended(.exited(0), _, _)? = r.report else { Issue.record("\(r)"); return }
        _ = init_.end()
    }

    @Test("the CPU of what a task left running (reaped by the init) is the task's", .enabled(if: program != nil))
    func leftoversCPUCounted() throws {
        let init_ = try Running()
        // The loop is orphaned at once (its parent subshell exits), burns CPU while the task
        // sleeps, and is ended with the task: the task waited for none of it.
        let r = try init_.run(["sh", "-c", "(sh -c 'while :; do :; done' &); sleep 1"])
        guard case .ended(.exited(0), let cpu, _)? = r.report else { Issue.record("\(r)"); return }
        #expect(cpu >= 300_000, "cpu \(cpu) µs: the orphaned loop's CPU was not counted")
        _ = init_.end()
    }

    @Test("it is found beside the executable, else in ../libexec/releasectl; one others may write, or not root's, is refused")
    func locating() throws {
        #expect(TaskInit.candidates(besides: "/usr/bin/released") == ["/usr/bin/releasectl-init", "/usr/libexec/releasectl/releasectl-init"])
        let dir = NSTemporaryDirectory() + "releasectl-init-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: TaskInit.InitMissing.self) { try TaskInit.locate(besides: dir + "/bin/released").get() }
        let program = dir + "/bin/releasectl-init"
        FileManager.default.createFile(atPath: program, contents: Data("#!/bin/sh\n".utf8))
        chmod(program, 0o775)
        let writable = TaskInit.locate(besides: dir + "/bin/released")
        guard case .failure(let why) = writable else { Issue.record("a group-writable init was accepted"); return }
        #expect(why.description.contains("writable by its group or others"), "\(why)")
        chmod(program, 0o755)
        if geteuid() == 0 {
            chown(program, 65534, 65534)
            guard case .failure(let other) = TaskInit.locate(besides: dir + "/bin/released") else { Issue.record("another user's init was accepted"); return }
            #expect(other.description.contains("owned by uid 65534"), "\(other)")
            chown(program, 0, 0)
        }
        #expect(try TaskInit.locate(besides: dir + "/bin/released").get().path == program)
    }
}
