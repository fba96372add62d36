import Foundation
import Glibc
import ReleaseContainers
import Testing

/// `releasectl-init`'s message and the program itself, run on the host as the container would
/// run it (no engine needed), and the daemon's rules for finding it.
@Suite("container init")
struct ContainerInitTests {
    /// The message read back by its own rules: magic, counts, then length-prefixed strings.
    static func decode(_ bytes: [UInt8]) -> (argv: [String], environment: [String])? {
        guard bytes.count >= 12, Array(bytes[0..<4]) == Array("RCI1".utf8) else { return nil }
        func u32(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24 }
        let argc = u32(4), envc = u32(8)
        var at = 12
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

    @Test("the message carries argv and every variable exactly: line breaks, '=' signs, empty values and arguments, in name order")
    func message() throws {
        let environment = ["PEM": "-----BEGIN-----\nabc=\n-----END-----\n", "B": "x=y=z", "EMPTY": "", "A": "1"]
        let bytes = ContainerInit.message(argv: ["/bin/sh", "-c", "echo \"$PEM\"", ""], environment: environment)
        let decoded = try #require(Self.decode(bytes))
        #expect(decoded.argv == ["/bin/sh", "-c", "echo \"$PEM\"", ""])
        #expect(decoded.environment == ["A=1", "B=x=y=z", "EMPTY=", "PEM=-----BEGIN-----\nabc=\n-----END-----\n"])
    }

    /// The built program (script/build-init puts it beside `released`), or nil when not built.
    static var program: String? {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = ProcessInfo.processInfo.environment["RELEASECTL_BIN_DIR"].map { $0 + "/releasectl-init" }
            ?? root.appendingPathComponent(".build/debug/releasectl-init").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    /// Runs the program with `input` on stdin and `environment`; its exit status and output.
    static func run(_ input: [UInt8], environment: [String: String] = ["IMAGE_ENV": "from the image", "A": "image's"]) throws
        -> (status: Int32, output: String) {
        let program = try #require(Self.program, "releasectl-init is not built: run script/build-init (script/test does)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = ["migrate"]
        process.environment = environment
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input))
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test("the program execs the command with the image's environment and the task's over it, stdin /dev/null", .enabled(if: program != nil))
    func runsTheTask() throws {
        let script = "printf 'A=%s IMAGE_ENV=%s PEM=[%s] args=%s stdin=%s\\n' \"$A\" \"$IMAGE_ENV\" \"$PEM\" \"$#\" \"$(wc -c)\""
        let r = try Self.run(ContainerInit.message(argv: ["sh", "-c", script, "x", "y"], environment: ["A": "task's", "PEM": "l1\nl2", "PATH": "/usr/bin:/bin"]))
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output == "A=task's IMAGE_ENV=from the image PEM=[l1\nl2] args=1 stdin=0\n", "\(r.output)")
    }

    @Test("a message cut short, a foreign one, or a command not found runs nothing and says why on one line of its own", .enabled(if: program != nil))
    func refusals() throws {
        let full = ContainerInit.message(argv: ["sh", "-c", "echo ran"], environment: ["PATH": "/usr/bin:/bin"])
        let cut = try Self.run(Array(full.dropLast(3)))
        #expect(cut.status == 126 && cut.output == "releasectl-init: the task's command and environment were cut short; not starting the task\n", "\(cut)")
        let foreign = try Self.run(Array("GET / HTTP/1.0\r\n\r\n".utf8))
        #expect(foreign.status == 126 && foreign.output.hasPrefix("releasectl-init: stdin does not hold a task of releasectl's"), "\(foreign)")
        let missing = try Self.run(ContainerInit.message(argv: ["no-such-program-xyz"], environment: ["PATH": "/nonexistent"]))
        #expect(missing.status == 127 && missing.output == "releasectl-init: command not found: no-such-program-xyz (PATH=/nonexistent)\n", "\(missing)")
        var huge = Array("RCI1".utf8) + [1, 0, 0, 0, 0, 0, 0, 0]
        huge += [0xff, 0xff, 0xff, 0x0f]  // a string "of" 256 MiB
        let tooLong = try Self.run(huge)
        #expect(tooLong.status == 126 && tooLong.output.contains("over the limit"), "\(tooLong)")
        #expect(!cut.output.contains("ran") && !tooLong.output.contains("ran"))
    }

    @Test("it is found beside the executable, else in ../libexec/releasectl; one others may write, or not root's, is refused")
    func locating() throws {
        #expect(ContainerInit.candidates(besides: "/usr/bin/released") == ["/usr/bin/releasectl-init", "/usr/libexec/releasectl/releasectl-init"])
        let dir = NSTemporaryDirectory() + "releasectl-init-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: ContainerInit.InitMissing.self) { try ContainerInit.locate(besides: dir + "/bin/released").get() }
        let program = dir + "/bin/releasectl-init"
        FileManager.default.createFile(atPath: program, contents: Data("#!/bin/sh\n".utf8))
        chmod(program, 0o775)
        let writable = ContainerInit.locate(besides: dir + "/bin/released")
        guard case .failure(let why) = writable else { Issue.record("a group-writable init was accepted"); return }
        #expect(why.description.contains("writable by its group or others"), "\(why)")
        chmod(program, 0o755)
        if geteuid() == 0 {
            chown(program, 65534, 65534)
            guard case .failure(let other) = ContainerInit.locate(besides: dir + "/bin/released") else { Issue.record("another user's init was accepted"); return }
            #expect(other.description.contains("owned by uid 65534"), "\(other)")
            chown(program, 0, 0)
        }
        #expect(try ContainerInit.locate(besides: dir + "/bin/released").get().path == program)
    }
}
