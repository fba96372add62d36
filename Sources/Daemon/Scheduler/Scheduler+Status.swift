import ReleaseKit

extension Scheduler {
    /// The status line systemd shows (`STATUS=`), from the scheduler's state: the running
    /// releases with their progress, how many wait, or idle.
    static func statusText(running: [(entry: ReleaseQueue.Entry, progress: String?, claimed: Bool)], waiting: Int,
                           arriving: Int, finished: Int, accepting: Bool, waitingFor: String? = nil) -> String {
        let queued = waiting + arriving
        let why = waitingFor.map { " (\($0))" } ?? ""
        if !running.isEmpty {
            let parts = running.sorted { $0.entry.serialKey < $1.entry.serialKey }.map { r in
                r.progress ?? "\(r.entry.app) \(r.entry.release): starting"
            }
            return parts.joined(separator: "; ") + (queued == 0 ? "" : "; \(queued) queued\(why)")
        }
        if !accepting { return "stopping" }
        return "idle, \(finished) done" + (queued == 0 ? "" : ", \(queued) queued\(why)")
    }

    func updateStatus() {
        let running = started.values.map { ($0.entry, $0.progress, $0.claimed) }
        context.notifier.status(Self.statusText(running: running, waiting: queue.waitingCount, arriving: arrivals.count,
                                                finished: finishedCount, accepting: accepting, waitingFor: waitingFor))
    }

    func refreshStatus() { updateStatus() }
}
