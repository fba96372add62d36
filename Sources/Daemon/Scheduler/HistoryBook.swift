import ReleaseKit
import Synchronization

/// The daemon's `DeployHistory`: built from `done/` at start, told of every release that ends
/// here (by the scheduler, where each end is booked), read by intake's phase check and by a
/// starting release's first-deploy question.
final class HistoryBook: Sendable {
    private let history: Mutex<DeployHistory>

    init(_ records: [ReleaseRecord]) { history = Mutex(DeployHistory(records)) }

    func add(_ record: ReleaseRecord) { history.withLock { $0.add(record) } }

    func read<T>(_ body: (DeployHistory) -> T) -> T { history.withLock { body($0) } }
}
