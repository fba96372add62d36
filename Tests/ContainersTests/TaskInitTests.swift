import Foundation
import Glibc
import ReleaseContainers
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

    @Test("reports parse: an exit, a signal, a command that could not start; anything else is no report")
    func reports() {
        #expect(TaskInit.Report("ended exit 3 cpu_us 1500 maxrss_kb 900") == .ended(.exited(3), cpuMicros: 1500, maxRSSKiB: 900))
        #expect(TaskInit.Report("ended signal 9 cpu_us 0 maxrss_kb 1") == .ended(.signaled(9), cpuMicros: 0, maxRSSKiB: 1))
        #expect(TaskInit.Report("failed 127 command not found: x (PATH=/bin)") == .failed(code: 127, why: "command not found: x (PATH=/bin)"))
        for bad in ["", "ended", "ended exit 256 cpu_us 1 maxrss_kb 1", "ended signal 0 cpu_us 1 maxrss_kb 1", "ended exit 0 cpu_us -1 maxrss_kb 1",
                    "ended exit 0 cpu_us 1 maxrss_kb 1 more", "failed 1 why", "failed x why", "ended exit 0 maxrss_kb 1 cpu_us 1"] {
            #expect(TaskInit.Report(Substring(bad)) == nil, "\(bad)")
        }
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
        let stream = Array("one\u{1E}two\u{1E}releasectl-init other ended exit 0 cpu_us 1 maxrss_kb 1\nno newline\u{1E}releasectl-init k3y ended exit 4 cpu_us 20 maxrss_kb 30\nafter\u{1E}\u{1E}releasectl-init k3y failed 127 command not found: x\n".utf8)
        let expected = Array("one\u{1E}two\u{1E}releasectl-init other ended exit 0 cpu_us 1 maxrss_kb 1\nno newlineafter\u{1E}".utf8)
        let reports: [TaskInit.Report?] = [.ended(.exited(4), cpuMicros: 20, maxRSSKiB: 30), .failed(code: 127, why: "command not found: x")]
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

    /// The program running as a container's init would (here not as PID 1): messages in,
    /// output and reports out.
    final class Running {
        let process = Process()
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        var scanner: ReportScanner
        var output: [UInt8] = []

        init(key: String = "k3y", environment: [String: String] = ["IMAGE_ENV": "from the image", "A": "image's"]) throws {
            let program = try #require(TaskInitTests.program, "releasectl-init is not built: run script/build-init (script/test does)")
            scanner = ReportScanner(key: key)
            process.executableURL = URL(fileURLWithPath: program)
            process.environment = environment
            process.standardInput = stdin
            process.standardOutput = stdout
            process.standardError = stderr
            try process.run()
            send(TaskInit.key(key))
        }

        func send(_ bytes: [UInt8]) { stdin.fileHandleForWriting.write(Data(bytes)) }

        /// Runs a task: its output and its report.
        func run(_ argv: [String], _ environment: [String: String] = ["PATH": "/usr/bin:/bin"]) throws -> (output: String, report: TaskInit.Report?) {
            send(TaskInit.task(argv: argv, environment: environment))
            output = []
            while true {
                let data = stdout.fileHandleForReading.availableData
                if data.isEmpty { throw HarnessFailure("the program ended before it reported: \(String(decoding: output, as: UTF8.self))") }
                for piece in Array(data).withUnsafeBytes({ scanner.scan($0) }) {
                    switch piece {
                    case .output(let bytes): output += bytes
                    case .report(let report): return (String(decoding: output, as: UTF8.self), report)
                    }
                }
            }
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
        #expect(first.output == "A=task's IMAGE_ENV=from the image PEM=[l1\nl2] args=1 stdin=0\nto-stderr\n", "\(first)")
        guard case .ended(.exited(0), _, _)? = first.report else { Issue.record("\(first)"); return }
        // The second task sees none of the first's variables.
        let second = try init_.run(["sh", "-c", "echo \"A=${A:-unset} PEM=${PEM:-unset}\"; exit 3"])
        #expect(second.output == "A=image's PEM=unset\n")
        guard case .ended(.exited(3), _, _)? = second.report else { Issue.record("\(second)"); return }
        let killed = try init_.run(["sh", "-c", "kill -9 $$"])
        guard case .ended(.signaled(9), _, _)? = killed.report else { Issue.record("\(killed)"); return }
        let missing = try init_.run(["no-such-program-xyz"], ["PATH": "/nonexistent"])
        #expect(missing.report == .failed(code: 127, why: "command not found: no-such-program-xyz (PATH=/nonexistent)"), "\(missing)")
        let notExecutable = try init_.run(["/etc/passwd"])
        #expect(notExecutable.report == .failed(code: 126, why: "cannot run /etc/passwd: Permission denied"), "\(notExecutable)")
        let end = init_.end()
        #expect(end.status == 0 && end.errors.isEmpty, "\(end)")
    }

    @Test("a signal message reaches the running task's whole group, and what the task left in it is ended before its report", .enabled(if: program != nil))
    func signalsAndLeftovers() throws {
        let init_ = try Running()
        let marker = "\(UInt32.random(in: 100_000...999_999))"
        // The task traps TERM, so the report shows it ran its trap; its background sleep got TERM too.
        init_.send(TaskInit.task(argv: ["sh", "-c", "trap 'echo got TERM; exit 143' TERM; echo ready; sleep 3\(marker) & wait"],
                                 environment: ["PATH": "/usr/bin:/bin"]))
        var seen = ""
        while !seen.contains("ready") { seen += String(decoding: init_.stdout.fileHandleForReading.availableData, as: UTF8.self) }
        init_.send(TaskInit.signal(SIGTERM))
        var rest: [UInt8] = []
        var report: TaskInit.Report??
        while report == nil {
            for piece in Array(init_.stdout.fileHandleForReading.availableData).withUnsafeBytes({ init_.scanner.scan($0) }) {
                if case .output(let b) = piece { rest += b }
                if case .report(let r) = piece { report = .some(r) }
            }
        }
        #expect(String(decoding: rest, as: UTF8.self).contains("got TERM"))
        guard case .ended(.exited(143), _, _)?? = report else { Issue.record("\(String(describing: report))"); return }
        #expect(!Self.running("sleep 3\(marker)"), "the task's background process outlived the signal")
        // A task that leaves a process in its group: it is gone once the report is in.
        let left = try init_.run(["sh", "-c", "sleep 4\(marker) & echo left"])
        #expect(left.output == "left\n")
        // (Outside a container the init is not their parent: their end is seen a moment later.)
        let until = Date().addingTimeInterval(5)
        while Self.running("sleep 4\(marker)") && Date() < until { usleep(10_000) }
        #expect(!Self.running("sleep 4\(marker)"), "a task's process outlived it")
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
        for r in [cut, foreign, huge, badKey] { #expect(!r.output.contains("ran")) }
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
