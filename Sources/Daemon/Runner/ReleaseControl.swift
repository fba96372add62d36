import ReleaseKit
import Synchronization

/// The stop switch of one running release: set once, observed by whatever is running.
public final class ReleaseControl: Sendable {
    /// Told the reason when the release is stopped, or nil when its waiter gave up first.
    public typealias Observer = @Sendable (StopReason?) -> Void

    private struct State {
        var reason: StopReason?
        var observers: [Int: Observer] = [:]
        var nextToken = 0
        var fence: ContinuousClock.Instant?
    }

    private let state = Mutex(State())

    public init() {}

    /// Why the release was stopped, if it was.
    public var reason: StopReason? { state.withLock { $0.reason } }

    /// Stops the release; the first reason given stands.
    public func stop(_ reason: StopReason) {
        let observers = state.withLock { s -> [Observer] in
            guard s.reason == nil else { return [] }
            s.reason = reason
            defer { s.observers = [:] }
            return Array(s.observers.values)
        }
        for o in observers { o(reason) }
    }

    /// Sets the time past which no task of the release may start (a cluster lease's, moved
    /// on with each renewal: see `ClusterCoordinator`).
    public func setFence(_ instant: ContinuousClock.Instant) {
        state.withLock { $0.fence = instant }
    }

    /// Stops the release (`leaseLost`) when its fence has passed — checked before each task
    /// starts, so a daemon that was stopped past its lease starts nothing on waking, whatever
    /// it has not yet noticed. Returns the reason the release is stopped for, if it is.
    @discardableResult
    public func checkFence(now: ContinuousClock.Instant = .now) -> StopReason? {
        if let fence = state.withLock({ $0.fence }), now >= fence { stop(.leaseLost) }
        return reason
    }

    /// Calls `observer` once, with the reason, when the release is stopped — at once, on this
    /// thread, if it is stopped already. The token takes it back (`forget`).
    public func observe(_ observer: @escaping Observer) -> Int {
        let (token, stopped) = state.withLock { s -> (Int, StopReason?) in
            s.nextToken += 1
            if s.reason == nil { s.observers[s.nextToken] = observer }
            return (s.nextToken, s.reason)
        }
        if let stopped { observer(stopped) }
        return token
    }

    /// Takes an observer back; it is called with nil if it had not been called yet.
    public func forget(_ token: Int) {
        state.withLock { $0.observers.removeValue(forKey: token) }?(nil)
    }

    /// Waits until the release is stopped; returns nil if the waiting task is cancelled first.
    public func wait() async -> StopReason? {
        let token = Mutex<Int?>(nil)
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<StopReason?, Never>) in
                let t = observe { c.resume(returning: $0) }
                token.withLock { $0 = t }
                if Task.isCancelled { forget(t) }
            }
        } onCancel: {
            if let t = token.withLock({ $0 }) { forget(t) }
        }
    }
}
