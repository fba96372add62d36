import ReleaseSupport

/// Sends journal entries from a queue of their own (`SerialQueue`), in order.
///
/// `sd_journal_sendv` is a blocking `sendmsg`: a journald that is slow to read would otherwise
/// stall whatever thread logs — the scheduler, the cooperative pool. Entries wait in a bounded
/// queue instead; only when that is full (journald far behind a very noisy task) does a logger
/// wait, so no entry is ever dropped. An entry the journal refuses goes to its fallback
/// (stderr). `flush` returns once the last entry posted has been sent, not merely taken.
final class JournalWriter: Sendable {
    struct Entry: Sendable {
        var fields: [String]
        var fallback: @Sendable () -> Void
    }

    static let shared = JournalWriter(capacity: 4096, send: JournalLogHandler.send)

    private let queue: SerialQueue
    private let send: @Sendable ([String]) -> Int32

    /// `send` returns 0 when the journal took the entry.
    init(capacity: Int, send: @escaping @Sendable ([String]) -> Int32) {
        queue = SerialQueue(capacity: capacity)
        self.send = send
    }

    /// Queues an entry (waits while the queue is full).
    func post(_ entry: Entry) {
        let send = send
        queue.post { if send(entry.fields) != 0 { entry.fallback() } }
    }

    /// Waits (bounded) until every entry posted so far was sent, e.g. before the process exits.
    @discardableResult
    func flush(timeout: Duration = .seconds(2)) -> Bool {
        queue.flush(timeout: timeout)
    }
}
