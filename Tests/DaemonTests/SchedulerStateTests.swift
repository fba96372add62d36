import Glibc
import ReleaseKit
import Testing
@testable import ReleaseDaemon

/// The scheduler's state machine, driven by its events alone: what starts and in which order,
/// serial keys and max-parallel, deferral and retry, cancels of waiting, arriving and running
/// releases, shutdown — without a daemon, a spool or a clock.
@Suite("scheduler state")
struct SchedulerStateTests {
    /// Ids in the order made (ids order by time, then by their random part: made one by one
    /// they increase).
    static func ids(_ n: Int) -> [ReleaseID] {
        var made: [ReleaseID] = []
        while made.count < n {
            let id = ReleaseID.generate()
            if made.last.map({ $0.rawValue < id.rawValue }) ?? true { made.append(id) }
        }
        return made
    }

    static func entry(_ id: ReleaseID, _ app: String, key: String? = nil) -> ReleaseQueue.Entry {
        ReleaseQueue.Entry(id: id, serialKey: key ?? app, app: app, release: "v-\(id.rawValue.suffix(4))")
    }

    static func started(_ actions: [SchedulerState.Action]) -> [ReleaseID] {
        actions.compactMap { if case .start(let e) = $0 { e.id } else { nil } }
    }

    @Test("one release of a serial key at a time, in id order; keys in parallel up to max-parallel, the oldest head first")
    func ordering() {
        var state = SchedulerState(maxParallel: 2)
        let ids = Self.ids(5)
        // Admitted out of order: shop's later release first.
        for (id, app) in [(ids[2], "shop"), (ids[0], "shop"), (ids[1], "blog"), (ids[3], "cms"), (ids[4], "blog")] {
            state.admitted(Self.entry(id, app))
        }
        #expect(Self.started(state.dispatch()) == [ids[0], ids[1]], "the two oldest heads, shop's first release first")
        #expect(state.dispatch().isEmpty, "max-parallel 2: nothing more")
        #expect(state.statusText == "blog v-\(ids[1].rawValue.suffix(4)): starting; shop v-\(ids[0].rawValue.suffix(4)): starting; 3 queued")
        #expect(Self.started(state.finished(ids[0], counted: true)) == [ids[2]], "shop's next, before cms (older head than blog's next)")
        #expect(Self.started(state.finished(ids[1], counted: true)) == [ids[3]])
        #expect(Self.started(state.finished(ids[2], counted: true)) == [ids[4]])
        #expect(state.finished(ids[3], counted: true) == [])
        #expect(state.finished(ids[4], counted: true) == [.nothingRuns])
        #expect(state.statusText == "idle, 5 done")
    }

    @Test("apps with one serial key never run at once, whatever max-parallel allows")
    func serialKeys() {
        var state = SchedulerState(maxParallel: 4)
        let ids = Self.ids(3)
        state.admitted(Self.entry(ids[0], "shop", key: "main-db"))
        state.admitted(Self.entry(ids[1], "billing", key: "main-db"))
        state.admitted(Self.entry(ids[2], "blog"))
        #expect(Self.started(state.dispatch()) == [ids[0], ids[2]])
        #expect(Self.started(state.finished(ids[0], counted: true)) == [ids[1]])
    }

    @Test("deferred: the release waits again at the head of its key, one retry is scheduled however many defer, a nudge starts it again")
    func deferral() {
        var state = SchedulerState(maxParallel: 2)
        let ids = Self.ids(3)
        for (id, app) in [(ids[0], "shop"), (ids[1], "blog"), (ids[2], "shop")] { state.admitted(Self.entry(id, app)) }
        _ = state.dispatch()
        let first = state.deferred(ids[0], reason: "waiting for the cluster database", first: nil)
        #expect(first.actions == [.retryLater] && first.newReason)
        let second = state.deferred(ids[1], reason: "waiting for the cluster database", first: nil)
        #expect(second.actions == [.nothingRuns] && !second.newReason, "one retry already scheduled; the same reason is not said twice")
        #expect(state.statusText == "idle, 0 done, 3 queued (waiting for the cluster database)")
        #expect(Self.started(state.nudged()) == [ids[0], ids[1]], "shop's first again, not its second")
        state.claimed(ids[0])
        #expect(!state.statusText.contains("waiting for"), "a claim clears the reason")
        #expect(state.deferred(ids[2], reason: "x", first: nil).actions.isEmpty, "a release never started is not deferred")
    }

    @Test("the cluster's order wins: deferred behind another deploy key, that key's release starts first")
    func promotion() {
        var state = SchedulerState(maxParallel: 1)
        let ids = Self.ids(2)
        var late = Self.entry(ids[1], "shop")
        late.deployKey = "deploy-first"
        state.admitted(Self.entry(ids[0], "shop"))
        state.admitted(late)
        _ = state.dispatch()
        _ = state.deferred(ids[0], reason: "an earlier deploy runs first", first: "deploy-first")
        #expect(Self.started(state.nudged()) == [ids[1]])
    }

    @Test("cancel: a running release is stopped (its marker kept until it ends), a waiting one recorded cancelled, an arriving one left to intake, an unknown one's marker dropped")
    func cancels() {
        var state = SchedulerState(maxParallel: 1)
        let ids = Self.ids(4)
        state.admitted(Self.entry(ids[0], "shop"))
        state.admitted(Self.entry(ids[1], "blog"))
        _ = state.dispatch()
        let running = state.cancel(ids[0])
        #expect(running.actions == [.stop(ids[0], .cancelled)] && !running.markerDone)
        let waiting = state.cancel(ids[1])
        #expect(waiting.actions.first == .cancelQueued(Self.entry(ids[1], "blog")) && waiting.markerDone)
        #expect(!state.knows(ids[1]))
        _ = state.arrived([Arrivals.Found(name: SpoolName("\(ids[2]).json"), owner: 1000, id: ids[2])])
        let arriving = state.cancel(ids[2])
        #expect(arriving.actions.isEmpty && !arriving.markerDone, "intake sees the marker and cancels it then")
        let batch = state.takeIntake(limit: 10)
        #expect(batch.map(\.name) == [SpoolName("\(ids[2]).json")])
        #expect(state.cancel(ids[2]).actions.isEmpty, "in flight: still intake's")
        state.settled(SpoolName("\(ids[2]).json"))
        #expect(state.cancel(ids[3]) == ([], true))
    }

    @Test("cancel at every other stage: a request taken in with its marker there is recorded cancelled and never queued (valid or not); one let start but cancelled before its claim is recorded cancelled, and the next of its key starts")
    func cancelsOfEveryStage() {
        var state = SchedulerState(maxParallel: 1)
        let ids = Self.ids(3)
        let request = ReleaseRequest(id: ids[0], app: "shop", release: "v1", directory: "/srv/shop")
        let marked = state.takenIn(request, entry: Self.entry(ids[0], "shop"), admitted: true, cancelMarked: true)
        #expect(marked == [.cancelNotStarted(request)])
        #expect(!state.knows(ids[0]) && state.dispatch().isEmpty, "never queued")
        let invalid = ReleaseRequest(id: ids[1], app: "shop", release: "v2", directory: "/srv/shop")
        #expect(state.takenIn(invalid, entry: Self.entry(ids[1], "shop"), admitted: false, cancelMarked: true) == [.cancelNotStarted(invalid)])
        #expect(state.takenIn(invalid, entry: Self.entry(ids[1], "shop"), admitted: false, cancelMarked: false).isEmpty && !state.knows(ids[1]))
        // Two of one key: the first let start, cancelled before it claimed; the second starts.
        let first = ReleaseRequest(id: ids[1], app: "shop", release: "v2", directory: "/srv/shop")
        _ = state.takenIn(first, entry: Self.entry(ids[1], "shop"), admitted: true, cancelMarked: false)
        state.admitted(Self.entry(ids[2], "shop"))
        #expect(Self.started(state.dispatch()) == [ids[1]])
        let cancelled = state.cancelledBeforeClaim(first)
        #expect(cancelled.first == .cancelNotStarted(first))
        #expect(Self.started(cancelled) == [ids[2]])
        #expect(!state.knows(ids[1]))
        #expect(state.cancelledBeforeClaim(first).isEmpty, "once")
    }

    @Test("arrivals: taken round-robin by owner; one already waiting, running or in flight is not taken in twice")
    func arrivals() {
        var state = SchedulerState(maxParallel: 1)
        let ids = Self.ids(2)
        state.admitted(Self.entry(ids[0], "shop"))
        let names = (0..<3).map { SpoolName("junk\($0)") }
        #expect(state.arrived(names.map { Arrivals.Found(name: $0, owner: 1000, id: nil) }
                              + [Arrivals.Found(name: SpoolName("\(ids[1]).json"), owner: 0, id: ids[1]),
                                 Arrivals.Found(name: SpoolName("\(ids[0]).json"), owner: 0, id: ids[0])]) == [.takeIn])
        #expect(state.takeIntake(limit: 3).map(\.name) == [names[0], SpoolName("\(ids[1]).json"), names[1]])
        #expect(state.arrived([Arrivals.Found(name: names[0], owner: 1000, id: nil)]) == [.takeIn], "in flight: not added again")
        #expect(state.takeIntake(limit: 10).map(\.name) == [names[2]])
    }

    @Test("shutdown: nothing starts any more, every started release is stopped for it, the status says stopping once none runs")
    func shutdown() {
        var state = SchedulerState(maxParallel: 2)
        let ids = Self.ids(3)
        for (id, app) in [(ids[0], "shop"), (ids[1], "blog"), (ids[2], "cms")] { state.admitted(Self.entry(id, app)) }
        _ = state.dispatch()
        state.stopAccepting()
        #expect(state.interruptAll().count == 2 && state.interruptAll().allSatisfy { [.stop(ids[0], .shutdown), .stop(ids[1], .shutdown)].contains($0) })
        #expect(state.finished(ids[0], counted: true).isEmpty, "nothing new starts")
        #expect(state.finished(ids[1], counted: true) == [.nothingRuns])
        #expect(state.statusText == "stopping")
        #expect(state.nudged().isEmpty)
    }
}
