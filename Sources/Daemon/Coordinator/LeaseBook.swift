import ReleaseKit

/// The leases this node holds, as a pure state machine: when each was last renewed, and from
/// that when its release must stop starting tasks and end them (the stop time: lease − kill
/// grace − margin, so SIGTERM, the kill grace and SIGKILL fit before it runs out), and when
/// the process guard ends them itself (lease − half the margin). Its events — a claim, a
/// renewal, a refused renewal, the passing of time, an end — return the actions the
/// coordinator performs; it does no I/O and needs no database to be tested.
struct LeaseBook: Sendable {
    let lease: Duration
    let killGrace: Duration
    /// Room for the kill to land and for clocks' rates to differ (`ClusterSettings.leaseMargin`).
    let margin: Duration

    struct Held: Sendable {
        var entry: ReleaseQueue.Entry
        /// When the last renewal that succeeded was sent (the lease lasts from then).
        var renewedAt: ContinuousClock.Instant
        /// Told to stop already (it is stopped once).
        var stopped = false
    }

    private(set) var held: [String: Held] = [:]

    /// What the coordinator does.
    enum Action: Equatable, Sendable {
        /// Moves the release's fences on: no task starts after `stopAt`; past `guardAt` the
        /// process guard ends its processes.
        case fence(ReleaseID, stopAt: ContinuousClock.Instant, guardAt: ContinuousClock.Instant)
        /// Stops the release: its lease is lost (`refused`) or about to be (not renewed in time).
        case stop(ReleaseID, key: String, refused: Bool)
    }

    init(lease: Duration, killGrace: Duration, margin: Duration) {
        self.lease = lease
        self.killGrace = killGrace
        self.margin = margin
    }

    /// The stop time of a lease renewed at `renewedAt`.
    func stopTime(renewedAt: ContinuousClock.Instant) -> ContinuousClock.Instant { renewedAt + lease - killGrace - margin }

    /// When the guard ends a lease's tasks on its own.
    func guardTime(renewedAt: ContinuousClock.Instant) -> ContinuousClock.Instant { renewedAt + lease - margin / 2 }

    /// The key was claimed (or its claim's lost answer recovered) with a statement sent at `at`.
    mutating func claimed(_ entry: ReleaseQueue.Entry, at: ContinuousClock.Instant) -> [Action] {
        held[entry.clusterKey] = Held(entry: entry, renewedAt: at)
        return [fence(entry.id, at)]
    }

    /// A renewal sent at `sentAt` took effect. A stopped release's lease is still renewed
    /// (its outcome is committed within it), but its fences stay where they were.
    mutating func renewed(_ key: String, sentAt: ContinuousClock.Instant) -> [Action] {
        guard var h = held[key] else { return [] }
        h.renewedAt = sentAt
        held[key] = h
        return h.stopped ? [] : [fence(h.entry.id, sentAt)]
    }

    /// A renewal was refused: the lease ran out, or another node ended it.
    mutating func refused(_ key: String) -> [Action] { stop(key, refused: true) }

    /// Time passed: every lease past its stop time that was not renewed stops.
    mutating func tick(now: ContinuousClock.Instant) -> [Action] {
        held.keys.sorted().flatMap { key in now >= stopTime(renewedAt: held[key]!.renewedAt) ? stop(key, refused: false) : [] }
    }

    /// The release of `id` no longer holds `key` (its outcome is settled).
    mutating func ended(_ key: String, id: ReleaseID) {
        if held[key]?.entry.id == id { held[key] = nil }
    }

    /// Whether `id` holds `key`.
    func holds(_ key: String, id: ReleaseID) -> Bool { held[key]?.entry.id == id }

    private mutating func stop(_ key: String, refused: Bool) -> [Action] {
        guard var h = held[key], !h.stopped else { return [] }
        h.stopped = true
        held[key] = h
        return [.stop(h.entry.id, key: key, refused: refused)]
    }

    private func fence(_ id: ReleaseID, _ renewedAt: ContinuousClock.Instant) -> Action {
        .fence(id, stopAt: stopTime(renewedAt: renewedAt), guardAt: guardTime(renewedAt: renewedAt))
    }
}
