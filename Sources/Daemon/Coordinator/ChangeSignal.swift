import Synchronization

final class ChangeSignal: Sendable {
    private struct State {
        var generation = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var next = 0
    }
    private let state = Mutex(State())

    var generation: Int { state.withLock { $0.generation } }

    func bump() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.generation += 1
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for w in waiters { w.resume() }
    }

    /// Returns once the generation is past `seen`, or after `timeout`.
    func wait(after seen: Int, timeout: Duration) async {
        let token = state.withLock { s -> Int in s.next += 1; return s.next }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let now = self.state.withLock { s -> Bool in
                        if s.generation != seen { return true }
                        s.waiters[token] = c
                        return false
                    }
                    if now { c.resume() }
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            _ = await group.next()
            group.cancelAll()
            if let c = self.state.withLock({ $0.waiters.removeValue(forKey: token) }) { c.resume() }
        }
    }
}
