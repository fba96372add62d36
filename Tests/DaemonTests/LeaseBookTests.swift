import ReleaseKit
import Testing
@testable import ReleaseDaemon

/// The lease book: when a held lease's release stops starting tasks and ends them, when the
/// guard ends them itself, and how renewals, refusals and time move that — without a database.
@Suite("lease book")
struct LeaseBookTests {
    static let t0 = ContinuousClock.now
    static func entry(_ key: String) -> ReleaseQueue.Entry {
        ReleaseQueue.Entry(id: ReleaseID.generate(), serialKey: "db", app: "shop", release: key, deployKey: key)
    }

    @Test("a claim fences at lease − kill grace − margin (no task starts after) and lease − margin/2 (the guard); a renewal moves both on")
    func fences() {
        var book = LeaseBook(lease: .seconds(3), killGrace: .seconds(1), margin: .milliseconds(500))
        let a = Self.entry("k1")
        #expect(book.claimed(a, at: Self.t0) == [.fence(a.id, stopAt: Self.t0 + .milliseconds(1500), guardAt: Self.t0 + .milliseconds(2750))])
        #expect(book.tick(now: Self.t0 + .milliseconds(1499)).isEmpty)
        let later = Self.t0 + .seconds(1)
        #expect(book.renewed("k1", sentAt: later) == [.fence(a.id, stopAt: later + .milliseconds(1500), guardAt: later + .milliseconds(2750))])
        #expect(book.tick(now: Self.t0 + .milliseconds(2000)).isEmpty, "renewed: its stop time moved on")
        #expect(book.tick(now: later + .milliseconds(1500)) == [.stop(a.id, key: "k1", refused: false)])
        #expect(book.tick(now: later + .seconds(5)).isEmpty, "stopped once")
        // Still renewed while it ends (its outcome is committed within the lease), fences kept.
        #expect(book.renewed("k1", sentAt: later + .seconds(2)).isEmpty)
        #expect(book.held["k1"]?.renewedAt == later + .seconds(2))
    }

    @Test("a refused renewal stops the release at once, once; an ended lease is forgotten, and another release's end does not touch it")
    func refusalsAndEnds() {
        var book = LeaseBook(lease: .seconds(30), killGrace: .seconds(10), margin: .seconds(1))
        let a = Self.entry("k1"), b = Self.entry("k2")
        _ = book.claimed(a, at: Self.t0)
        _ = book.claimed(b, at: Self.t0)
        #expect(book.refused("k2") == [.stop(b.id, key: "k2", refused: true)])
        #expect(book.refused("k2").isEmpty)
        #expect(book.renewed("nope", sentAt: Self.t0).isEmpty && book.refused("nope").isEmpty)
        book.ended("k1", id: b.id)
        #expect(book.holds("k1", id: a.id), "only the release that holds a key lets it go")
        book.ended("k1", id: a.id)
        #expect(!book.holds("k1", id: a.id))
        #expect(book.tick(now: Self.t0 + .seconds(60)).isEmpty, "k1 is gone, k2 stopped already")
    }

    @Test("a deploy state is bound as itself: every release state maps to one, and back for the final ones")
    func deployStates() {
        #expect(DeployState.allCases.map(\.rawValue) == ["queued", "running", "succeeded", "failed", "cancelled", "interrupted"])
        for state in ReleaseState.allCases {
            let deploy = DeployState(state)
            if state != .rejected, state.isFinal { #expect(deploy.releaseState == state) }
        }
        #expect(!DeployState.queued.isFinal && !DeployState.running.isFinal && DeployState.interrupted.isFinal)
    }
}
