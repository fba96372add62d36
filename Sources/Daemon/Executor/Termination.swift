import Glibc
import ReleaseKit

/// Something a task started that must not outlive it: its process group, processes that left
/// the group, a container.
protocol Terminable: Sendable {
    /// Sends `signal` to all of it.
    func send(_ signal: Int32) async
    /// Whether nothing of it is left running.
    func isGone() async -> Bool
}

/// Ends what a task started — the one place this is done: SIGTERM, then, if anything is left
/// after the kill grace, SIGKILL, repeated (bounded) until nothing is left, since a process
/// may fork while it is being killed.
enum Termination {
    /// Ends `target`: `onTerm` and `onKill` say (in the release log) why and what is sent.
    static func end(_ target: some Terminable, grace: Duration, onTerm: () -> Void, onKill: () -> Void) async {
        onTerm()
        await target.send(SIGTERM)
        let clock = ContinuousClock()
        let until = clock.now + grace
        while clock.now < until {
            if await target.isGone() { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
        onKill()
        for _ in 0..<5 {
            await target.send(SIGKILL)
            try? await Task.sleep(for: .milliseconds(20))
            if await target.isGone() { return }
        }
    }
}
