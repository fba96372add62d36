import FoundationEssentials
import Testing
@testable import ReleaseKit

/// The outcome rules of a release, without running anything: the order tasks run in, what
/// becomes `not-run`, when a reporter still runs, and the final state.
@Suite("release outcome rules")
struct ReleaseProgressTests {
    static func step(_ name: String, willRun: Bool = true, reporter: Bool = false, fatal: Bool = true) -> ReleasePlan.Step {
        ReleasePlan.Step(name: name, willRun: willRun, reason: willRun ? "on" : "off", gate: GateReading(variable: "G", value: nil),
                         command: .argv(["run", name]), timeout: nil, problem: nil, leftTo: nil, runsAfterFailure: reporter,
                         failureFailsRelease: fatal, failureHint: reporter ? "set REQUIRED=true to fail the release" : nil, note: nil)
    }

    /// notify is first in the plan but, reporting, runs last.
    static let plan = ReleasePlan(app: "shop", directory: "/srv", preset: nil, steps: [
        step("notify", reporter: true, fatal: false), step("migrate"), step("seed"), step("cache-clear", willRun: false), step("warm"),
    ], warnings: [])

    static func progress(_ plan: ReleasePlan = plan) -> ReleaseProgress {
        ReleaseProgress(plan: plan, record: ReleaseRecord(id: "x", app: "shop", release: "v1", state: .running), masking: .none)
    }

    /// Runs the progress to its end: `results[name]` is each task's failure (absent: success);
    /// `stopAfter` stops the release once that task ended. Returns the order run and the record.
    static func run(_ p: inout ReleaseProgress, results: [String: TaskFailure] = [:], stopAfter: (String, StopReason)? = nil) -> ([String], ReleaseRecord) {
        var order: [String] = []
        var stop: StopReason?
        while case .run(let i) = p.next(stop: stop, now: Date()) {
            let name = p.step(i).name
            order.append(name)
            #expect(p.record.tasks[i].state == .running)
            p.ended(i, failure: results[name], durationMs: 5)
            if let (after, reason) = stopAfter, after == name { stop = reason }
        }
        return (order, p.finish(stop: stop, now: Date(), durationMs: 20))
    }

    @Test("tasks run in plan order, reporters last; skipped ones stay skipped; all succeed")
    func order() {
        var p = Self.progress()
        #expect(p.toRun == ["migrate", "seed", "warm", "notify"])
        let (order, record) = Self.run(&p)
        #expect(order == ["migrate", "seed", "warm", "notify"])
        #expect(record.state == .succeeded && record.reason == nil)
        #expect(record.tasks.map(\.state) == [.succeeded, .succeeded, .succeeded, .skipped, .succeeded])
        #expect(record.tasks[3].reason == "off")
    }

    @Test("after a failure the rest are not-run; the reporter still runs and sees the failure")
    func failure() {
        var p = Self.progress()
        var seen: (ReleaseState, String?)?
        var order: [String] = []
        while case .run(let i) = p.next(stop: nil, now: Date()) {
            let name = p.step(i).name
            order.append(name)
            if name == "notify" { seen = (p.record.state, p.record.reason) }
            p.ended(i, failure: name == "migrate" ? TaskFailure(.failed, reason: "exited with status 1", exitStatus: 1) : nil, durationMs: 5)
        }
        let record = p.finish(stop: nil, now: Date(), durationMs: 20)
        #expect(order == ["migrate", "notify"])
        #expect(seen?.0 == .failed && seen?.1 == "migrate exited with status 1", "the report sees the outcome as it stands")
        #expect(record.state == .failed && record.reason == "migrate exited with status 1")
        #expect(record.tasks[1].exitStatus == 1)
        #expect(record.tasks[2].state == .notRun && record.tasks[2].reason == "an earlier task failed")
        #expect(record.tasks[4].state == .notRun)
    }

    @Test("a reporter's failure is a warning with the hint, unless its step says it fails the release")
    func reporterFailure() {
        var p = Self.progress()
        let (_, record) = Self.run(&p, results: ["notify": TaskFailure(.failed, reason: "POST answered 500")])
        #expect(record.state == .succeeded)
        #expect(record.warnings == ["notify failed: POST answered 500 (set REQUIRED=true to fail the release)"])
        var plan = Self.plan
        plan.steps[0].failureFailsRelease = true
        var required = Self.progress(plan)
        let (_, failed) = Self.run(&required, results: ["notify": TaskFailure(.failed, reason: "POST answered 500")])
        #expect(failed.state == .failed && failed.reason == "notify POST answered 500" && failed.warnings.isEmpty)
    }

    @Test("a cancel: the rest not-run, the reporter still reports; a shutdown: nothing more runs, interrupted")
    func stops() {
        var cancelled = Self.progress()
        let (order, record) = Self.run(&cancelled, stopAfter: ("migrate", .cancelled))
        #expect(order == ["migrate", "notify"])
        #expect(record.state == .cancelled && record.reason == "cancelled by releasectl cancel")
        #expect(record.tasks[2].state == .notRun && record.tasks[2].reason == "the release was cancelled")
        var shutdown = Self.progress()
        let (order2, record2) = Self.run(&shutdown, stopAfter: ("seed", .shutdown))
        #expect(order2 == ["migrate", "seed"])
        #expect(record2.state == .interrupted)
        #expect(record2.tasks[0].state == .notRun && record2.tasks[0].reason == "the daemon shut down", "notify does not run after a shutdown")
        #expect(record2.tasks[4].reason == "the release was interrupted")
    }

    @Test("the first failure is the release's reason; secrets in reasons and commands are masked")
    func firstFailureAndMasking() {
        var plan = Self.plan
        plan.steps[1].command = .argv(["migrate", "--password", "hunter22"])
        var p = ReleaseProgress(plan: plan, record: ReleaseRecord(id: "x", app: "shop", release: "v1", state: .running),
                                masking: Masking(env: ["DB_PASSWORD": "hunter22"]))
        #expect(p.record.tasks[1].command == ["migrate", "--password", "***"])
        let (_, record) = Self.run(&p, results: ["migrate": TaskFailure(.timedOut, reason: "timed out; password hunter22")])
        #expect(record.reason == "migrate timed out; password ***")
        #expect(record.tasks[1].state == .timedOut)
    }
}
