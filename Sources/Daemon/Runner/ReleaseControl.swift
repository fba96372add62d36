import ReleaseKit
import Synchronization

/// The stop switch of one running release: set once, observed by whatever is running.
public final class ReleaseControl: Sendable {
    private struct State {
        var reason: StopReason?
        var waiters: [Int: CheckedContinuation<StopReason?, Never>] = [:]
        var nextToken = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Why the release was stopped, if it was.
    public var reason: StopReason? { state.withLock { $0.reason } }

    /// Stops the release; the first reason given stands.
    public func stop(_ reason: StopReason) {
        let waiters = state.withLock { s -> [CheckedContinuation<StopReason?, Never>] in
            guard s.reason == nil else { return [] }
            s.reason = reason
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for w in waiters { w.resume(returning: reason) }
    }

    /// Waits until the release is stopped; returns nil if the waiting task is cancelled first.
    public func wait() async -> StopReason? {
        let token = state.withLock { s -> Int in s.nextToken += 1; return s.nextToken }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<StopReason?, Never>) in
                let resumeNow: StopReason?? = state.withLock { s in
                    if let r = s.reason { return .some(r) }
                    if Task.isCancelled { return .some(nil) }
                    s.waiters[token] = c
                    return .none
                }
                if let value = resumeNow { c.resume(returning: value) }
            }
        } onCancel: {
            let c = state.withLock { $0.waiters.removeValue(forKey: token) }
            c?.resume(returning: nil)
        }
    }
}
