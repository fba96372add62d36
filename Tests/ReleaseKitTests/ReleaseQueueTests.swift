import Testing
@testable import ReleaseKit

/// The queue's decisions alone: which releases may start, in which order, how many at once.
@Suite("release queue")
struct ReleaseQueueTests {
    /// Ids in submission order: a0 < a1 < …
    static func id(_ n: Int) -> ReleaseID { ReleaseID("01JDQ8K3ZP6V4TQX2M9B7C" + String(format: "%04d", n))! }

    static func entry(_ n: Int, _ app: String, key: String? = nil) -> ReleaseQueue.Entry {
        ReleaseQueue.Entry(id: id(n), serialKey: key ?? app, app: app, release: "v\(n)")
    }

    @Test("within a serial key, one at a time in id order, whatever order they arrived in")
    func idOrderWithinKey() {
        var q = ReleaseQueue()
        for n in [3, 1, 2] { q.enqueue(Self.entry(n, "shop")) }
        var order: [Int] = []
        while let next = q.start(maxParallel: 4).first {
            #expect(q.start(maxParallel: 4).isEmpty, "nothing else of the key starts while one runs")
            order.append(Int(String(next.release.dropFirst()))!)
            q.ended(next.id)
        }
        #expect(order == [1, 2, 3])
        #expect(q.waitingCount == 0 && q.runningCount == 0)
    }

    @Test("across keys, up to max-parallel at once, the oldest waiting head first")
    func parallelism() {
        var q = ReleaseQueue()
        q.enqueue(Self.entry(5, "blog"))
        q.enqueue(Self.entry(2, "shop"))
        q.enqueue(Self.entry(3, "wiki"))
        q.enqueue(Self.entry(9, "shop"))
        let first = q.start(maxParallel: 2)
        #expect(first.map(\.app) == ["shop", "wiki"], "heads 2 and 3 are the oldest")
        #expect(q.start(maxParallel: 2).isEmpty, "two run: the limit")
        q.ended(Self.id(3))
        #expect(q.start(maxParallel: 2).map(\.app) == ["blog"], "blog's 5 before shop's 9: shop still runs 2")
        q.ended(Self.id(2))
        #expect(q.start(maxParallel: 2).map(\.release) == ["v9"])
        #expect(q.runningCount == 2 && q.waitingCount == 0)
    }

    @Test("apps that share a serial key never run at once")
    func sharedSerialKey() {
        var q = ReleaseQueue()
        q.enqueue(Self.entry(1, "shop", key: "main-db"))
        q.enqueue(Self.entry(2, "billing", key: "main-db"))
        q.enqueue(Self.entry(3, "blog"))
        #expect(q.start(maxParallel: 8).map(\.app) == ["shop", "blog"])
        q.ended(Self.id(1))
        #expect(q.start(maxParallel: 8).map(\.app) == ["billing"])
    }

    @Test("a key busy elsewhere is passed over; a release put back goes first again")
    func busyAndPutBack() {
        var q = ReleaseQueue()
        q.enqueue(Self.entry(1, "shop"))
        q.enqueue(Self.entry(2, "shop"))
        q.enqueue(Self.entry(3, "blog"))
        #expect(q.start(maxParallel: 8, busy: ["shop"]).map(\.app) == ["blog"])
        let shop = q.start(maxParallel: 8)
        #expect(shop.map(\.release) == ["v1"])
        q.putBack(Self.id(1))
        #expect(q.isWaiting(Self.id(1)) && !q.isRunning(Self.id(1)))
        #expect(q.start(maxParallel: 8).map(\.release) == ["v1"], "it keeps its place ahead of v2")
    }

    @Test("a deploy the cluster runs first is promoted to the head of its serial key")
    func promote() {
        var q = ReleaseQueue()
        for n in 1...3 { q.enqueue(Self.entry(n, "shop")) }
        let head = q.start(maxParallel: 4)
        #expect(head.map(\.release) == ["v1"])
        q.putBack(head[0].id)
        let promoted = q.promote(deployKey: "shop/v3", serialKey: "shop")
        let absent = q.promote(deployKey: "shop/v9", serialKey: "shop"), elsewhere = q.promote(deployKey: "shop/v3", serialKey: "billing")
        #expect(promoted)
        #expect(!absent, "not waiting here")
        #expect(!elsewhere, "another serial key")
        var order: [String] = []
        while let next = q.start(maxParallel: 4).first {
            order.append(next.release)
            q.ended(next.id)
        }
        #expect(order == ["v3", "v1", "v2"])
    }

    @Test("removing a waiting release; nothing is added twice")
    func removeAndDuplicates() {
        var q = ReleaseQueue()
        q.enqueue(Self.entry(1, "shop"))
        q.enqueue(Self.entry(1, "shop"))
        q.enqueue(Self.entry(2, "shop"))
        #expect(q.waitingCount == 2)
        #expect(q.remove(Self.id(2))?.release == "v2")
        #expect(q.remove(Self.id(2)) == nil)
        let started = q.start(maxParallel: 1)
        q.enqueue(started[0])
        #expect(q.waitingCount == 0, "a running release is not queued again")
    }
}
