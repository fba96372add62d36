import Glibc

/// Sends journal entries from a thread of its own, in order.
///
/// `sd_journal_sendv` is a blocking `sendmsg`: a journald that is slow to read would otherwise
/// stall whatever thread logs — the scheduler, the cooperative pool. Entries wait in a bounded
/// queue instead; only when that is full (journald far behind a very noisy task) does a logger
/// wait, so no entry is ever dropped. An entry the journal refuses goes to its fallback
/// (stderr).
final class JournalWriter: @unchecked Sendable {
    // @unchecked: every field is guarded by `mutex` (a heap-allocated pthread mutex).
    struct Entry {
        var fields: [String]
        var fallback: @Sendable () -> Void
    }

    static let shared = JournalWriter(capacity: 4096)

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let notEmpty = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let notFull = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var queue: [Entry] = []
    private var head = 0
    private let capacity: Int
    private var started = false

    private init(capacity: Int) {
        self.capacity = capacity
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(notEmpty, nil)
        pthread_cond_init(notFull, nil)
    }

    /// Queues an entry (waits while the queue is full).
    func post(_ entry: Entry) {
        pthread_mutex_lock(mutex)
        if !started {
            started = true
            startThread()
        }
        while queue.count - head >= capacity { pthread_cond_wait(notFull, mutex) }
        queue.append(entry)
        pthread_cond_signal(notEmpty)
        pthread_mutex_unlock(mutex)
    }

    private func startThread() {
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_create(&thread, &attributes, { raw in
            Unmanaged<JournalWriter>.fromOpaque(raw!).takeUnretainedValue().run()
        }, Unmanaged.passUnretained(self).toOpaque())
        pthread_attr_destroy(&attributes)
    }

    private func run() -> Never {
        while true {
            pthread_mutex_lock(mutex)
            while queue.count == head { pthread_cond_wait(notEmpty, mutex) }
            let entry = queue[head]
            head += 1
            if head > 1024 && head * 2 > queue.count {
                queue.removeFirst(head)
                head = 0
            }
            pthread_cond_signal(notFull)
            pthread_mutex_unlock(mutex)
            if JournalLogHandler.send(entry.fields) != 0 { entry.fallback() }
        }
    }

    /// Waits (bounded) until every queued entry was sent, e.g. before the process exits.
    func flush(timeout: Duration = .seconds(2)) {
        let clock = ContinuousClock()
        let until = clock.now + timeout
        while clock.now < until {
            pthread_mutex_lock(mutex)
            let empty = queue.count == head
            pthread_mutex_unlock(mutex)
            if empty { return }
            usleep(1000)
        }
    }
}
