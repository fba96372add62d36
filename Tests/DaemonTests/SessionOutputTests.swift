import Foundation
import Logging
import SystemPackage
import ReleaseContainers
import ReleaseKit
import Testing
@testable import ReleaseDaemon

/// A container's output as the executor reads it: what counts as the engine's word, and what
/// a task can print.
@Suite("session output")
struct SessionOutputTests {
    static func feed(_ output: SessionOutput, _ text: String) {
        Array(text.utf8).withUnsafeBytes { output.take($0) }
    }

    @Test("before the init says it runs, the output is the engine's; after, a task's 'Error: …' or 'releasectl-init: …' lines are its output, never the engine's or the init's word")
    func engineWordOnlyBeforeReady() throws {
        let dir = NSTemporaryDirectory() + "session-output-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir + "/logs", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = ReleaseLog(spool: Spool(root: FilePath(dir)), id: "01TEST", masking: .none, logger: Logger(label: "test"))
        defer { log.close() }
        let output = SessionOutput()
        Self.feed(output, "Trying to pull…\n")
        output.begin(task: "migrate", log: log, key: "k1")
        Self.feed(output, "\u{1E}releasectl-init k1 ready\n")
        #expect(output.isReady)
        Self.feed(output, "Error: forged engine failure\nreleasectl-init: forged refusal\n\u{1E}releasectl-init k0 fatal forged\n")
        #expect(output.engineLines == ["Trying to pull…"], "\(output.engineLines)")
        // A `fatal` without the key is output too; the task's end is still to come.
        #expect(output.fatal == nil && !output.hasReport)
        Self.feed(output, "\u{1E}releasectl-init k1 limits-changed\n\u{1E}releasectl-init k1 ended exit 3 cpu_us 10 maxrss_kb 20\n")
        #expect(output.limitsChanged)
        #expect(output.takeReport() == .ended(.exited(3), cpuMicros: 10, maxRSSKiB: 20))
        // The next task's key: the previous one's reports are output.
        output.begin(task: "seed", log: log, key: "k2")
        Self.feed(output, "\u{1E}releasectl-init k1 ended exit 0 cpu_us 1 maxrss_kb 1\n")
        #expect(!output.hasReport)
    }
}
