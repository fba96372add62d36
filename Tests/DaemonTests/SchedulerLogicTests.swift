import Glibc
import ReleaseKit
import SystemPackage
import Testing
@testable import ReleaseDaemon

/// The scheduler's pure parts: arrivals taken round-robin by submitter, rejections bounded per
/// submitter, the status line, names made safe.
@Suite("scheduler logic")
struct SchedulerLogicTests {
    static func name(_ s: String) -> SpoolName { SpoolName(s) }

    @Test("arrivals are taken one of each submitter's in turn: a flood delays only its owner")
    func roundRobin() {
        var arrivals = Arrivals()
        for i in 0..<5 { arrivals.add(Self.name("junk\(i)"), owner: 1000) }
        arrivals.add(Self.name("real.json"), owner: 0)
        arrivals.add(Self.name("junk0"), owner: 1000)  // seen once only
        var taken: [String] = []
        while let next = arrivals.take() { taken.append(next.name.string) }
        #expect(taken == ["junk0", "real.json", "junk1", "junk2", "junk3", "junk4"])
        #expect(arrivals.isEmpty)
    }

    @Test("past rejected-limit, a submitter's oldest rejections go; another's are untouched")
    func rejectionLimit() {
        var ledger = RejectionLedger(spool: Spool(root: "/nonexistent"))
        #expect(ledger.filed("a", owner: 1, limit: 2).isEmpty)
        #expect(ledger.filed("b", owner: 1, limit: 2).isEmpty)
        #expect(ledger.filed("x", owner: 2, limit: 2).isEmpty)
        #expect(ledger.filed("c", owner: 1, limit: 2) == ["a"])
        #expect(ledger.filed("d", owner: 1, limit: 2) == ["b"])
        #expect(ledger.filed("y", owner: 2, limit: 2).isEmpty)
    }

    @Test("the status line: running releases with their progress, what waits, or idle")
    func statusText() {
        let shop = ReleaseQueue.Entry(id: ReleaseID.generate(), serialKey: "shop", app: "shop", release: "v42")
        let blog = ReleaseQueue.Entry(id: ReleaseID.generate(), serialKey: "blog", app: "blog", release: "v7")
        #expect(SchedulerState.statusText(running: [], waiting: 0, arriving: 0, finished: 3, accepting: true) == "idle, 3 done")
        #expect(SchedulerState.statusText(running: [], waiting: 2, arriving: 1, finished: 3, accepting: true) == "idle, 3 done, 3 queued")
        #expect(SchedulerState.statusText(running: [(shop, "shop v42: migrate (1/2)", true), (blog, nil, false)], waiting: 1, arriving: 0,
                                     finished: 0, accepting: true) == "blog v7: starting; shop v42: migrate (1/2); 1 queued")
        #expect(SchedulerState.statusText(running: [], waiting: 0, arriving: 0, finished: 0, accepting: false) == "stopping")
    }

    @Test("a file name made a safe record id: never hidden, never a record's name", arguments: [
        ("01JDQ8K3ZP6V4TQX2M9B7C5N1R.json", "01JDQ8K3ZP6V4TQX2M9B7C5N1R"), (".hidden.json", "hidden"),
        ("x.record.json", "x_record"), ("a b/c", "a_b_c"), ("", "unnamed"), ("...", "unnamed"),
    ])
    func safeStem(_ name: String, _ stem: String) {
        #expect(Intake.safeStem(name) == stem)
    }
}
