/// The releases waiting to start and those running, as a pure value: no I/O, no clock.
///
/// Releases are grouped by *serial key* (the app, unless the operator gives apps a shared
/// key, e.g. apps on one database): within a key they start one at a time, in id order —
/// which is submission order — and a release starts only when no release of its key runs.
/// Across keys, up to `maxParallel` run at once, and the key whose waiting head is oldest
/// goes first, so no key is starved by a busier one.
///
/// The scheduler owns one and acts on what it decides: `start` says which releases may
/// start now (and counts them as running from then on), `ended` frees their key.
public struct ReleaseQueue: Sendable {
    /// A waiting or running release: only what ordering needs (a request's env may be large).
    public struct Entry: Sendable, Equatable {
        public var id: ReleaseID
        public var serialKey: String
        public var app: String
        public var release: String
        /// The deploy it belongs to across a cluster's nodes (see `ReleaseRequest.deployKey`).
        public var deployKey: String
        public var phase: ReleasePhase
        /// A retry (`retryOf`): a retried postdeploy is a run of its own under its deploy's key.
        public var isRetry: Bool

        public init(id: ReleaseID, serialKey: String, app: String, release: String, deployKey: String? = nil,
                    phase: ReleasePhase = .default, isRetry: Bool = false) {
            self.deployKey = deployKey ?? ReleaseRequest.defaultDeployKey(app: app, release: release)
            self.phase = phase
            self.isRetry = isRetry
            self.id = id
            self.serialKey = serialKey
            self.app = app
            self.release = release
        }

        /// The deploy key and phase as one key of the cluster's database (see
        /// `ReleaseRequest.clusterKey`).
        public var clusterKey: String { ReleaseRequest.clusterKey(deployKey, phase: phase, retry: isRetry ? id : nil) }
    }

    /// Waiting releases by serial key, each list in id order.
    private var waiting: [String: [Entry]] = [:]
    /// The serial key of every waiting release.
    private var waitingKeys: [ReleaseID: String] = [:]
    /// The release running (or starting) under each serial key.
    private var runningByKey: [String: Entry] = [:]

    public init() {}

    /// How many releases wait.
    public var waitingCount: Int { waitingKeys.count }
    /// How many releases run (or are starting).
    public var runningCount: Int { runningByKey.count }
    /// The running releases, by serial key.
    public var running: [Entry] { runningByKey.keys.sorted().map { runningByKey[$0]! } }

    /// The first waiting or running release that satisfies `predicate`.
    public func first(where predicate: (Entry) -> Bool) -> Entry? {
        if let found = runningByKey.values.first(where: predicate) { return found }
        for queue in waiting.values { if let found = queue.first(where: predicate) { return found } }
        return nil
    }

    /// Whether the release waits here.
    public func isWaiting(_ id: ReleaseID) -> Bool { waitingKeys[id] != nil }
    /// Whether the release runs (or is starting).
    public func isRunning(_ id: ReleaseID) -> Bool { runningByKey.values.contains { $0.id == id } }
    /// The waiting release with this id.
    public func waitingEntry(_ id: ReleaseID) -> Entry? {
        waitingKeys[id].flatMap { key in waiting[key]?.first { $0.id == id } }
    }

    /// Adds a release to its key's queue, in id order. A release already waiting or running
    /// is not added twice.
    public mutating func enqueue(_ entry: Entry) {
        guard waitingKeys[entry.id] == nil, !isRunning(entry.id) else { return }
        waitingKeys[entry.id] = entry.serialKey
        var queue = waiting[entry.serialKey, default: []]
        if let last = queue.last, entry.id < last.id {
            queue.insert(entry, at: queue.firstIndex { entry.id < $0.id } ?? queue.endIndex)
        } else {
            queue.append(entry)
        }
        waiting[entry.serialKey] = queue
    }

    /// Takes a waiting release out of the queue (cancelled, or found invalid at start).
    @discardableResult
    public mutating func remove(_ id: ReleaseID) -> Entry? {
        guard let key = waitingKeys.removeValue(forKey: id), var queue = waiting[key],
              let index = queue.firstIndex(where: { $0.id == id }) else { return nil }
        let entry = queue.remove(at: index)
        waiting[key] = queue.isEmpty ? nil : queue
        return entry
    }

    /// The releases that may start now, oldest first, each counted as running from now on:
    /// the head of every serial key with nothing running (and not in `busy`, keys known to
    /// run elsewhere), while fewer than `maxParallel` run in all.
    public mutating func start(maxParallel: Int, busy: Set<String> = []) -> [Entry] {
        var started: [Entry] = []
        while runningByKey.count < maxParallel {
            guard let key = waiting.filter({ runningByKey[$0.key] == nil && !busy.contains($0.key) })
                .min(by: { $0.value[0].id < $1.value[0].id })?.key else { break }
            var queue = waiting[key]!
            let entry = queue.removeFirst()
            waiting[key] = queue.isEmpty ? nil : queue
            waitingKeys[entry.id] = nil
            runningByKey[key] = entry
            started.append(entry)
        }
        return started
    }

    /// A started release ended (or never got to start): its key may start the next.
    public mutating func ended(_ id: ReleaseID) {
        if let key = runningByKey.first(where: { $0.value.id == id })?.key { runningByKey[key] = nil }
    }

    /// A started release could not start after all and waits again, ahead of the releases of
    /// its key that came after it (id order puts it back at the head).
    /// Moves the waiting release of `deployKey` (a cluster key: see `Entry.clusterKey`) to the head of its
    /// serial key's queue (the cluster runs it first); false when none waits here.
    @discardableResult
    public mutating func promote(deployKey: String, serialKey: String) -> Bool {
        guard var queue = waiting[serialKey], let index = queue.firstIndex(where: { $0.clusterKey == deployKey }) else { return false }
        let entry = queue.remove(at: index)
        queue.insert(entry, at: queue.startIndex)
        waiting[serialKey] = queue
        return true
    }

    public mutating func putBack(_ id: ReleaseID) {
        guard let key = runningByKey.first(where: { $0.value.id == id })?.key, let entry = runningByKey.removeValue(forKey: key) else { return }
        enqueue(entry)
    }
}
