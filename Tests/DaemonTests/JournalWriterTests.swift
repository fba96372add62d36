import Glibc
@testable import ReleaseDaemon
import ReleaseSupport
import ReleaseWatcher
import Synchronization
import Testing

/// The queues the daemon's slow system calls run on: order, back-pressure, and a flush that
/// waits for the last entry to be *sent*, not merely taken.
@Suite("journal writer and serial queues")
struct JournalWriterTests {
    @Test("flush returns only once the last entry was sent, even when sending is slow")
    func flushWaitsForTheLastEntry() {
        let sent = Mutex<[String]>([])
        let writer = JournalWriter(capacity: 4) { fields in
            usleep(50_000)  // a journald slow to read
            sent.withLock { $0.append(fields[0]) }
            return 0
        }
        for i in 0..<3 { writer.post(.init(fields: ["MESSAGE=\(i)"], fallback: {})) }
        #expect(writer.flush(timeout: .seconds(10)))
        #expect(sent.withLock { $0 } == ["MESSAGE=0", "MESSAGE=1", "MESSAGE=2"], "all sent, in order, when flush returns")
    }

    @Test("an entry the journal refuses goes to its fallback")
    func fallback() {
        let fellBack = Mutex(0)
        let writer = JournalWriter(capacity: 4) { _ in -1 }
        writer.post(.init(fields: ["MESSAGE=x"], fallback: { fellBack.withLock { $0 += 1 } }))
        #expect(writer.flush())
        #expect(fellBack.withLock { $0 } == 1)
    }

    @Test("a flush that times out says so")
    func flushTimeout() {
        let queue = SerialQueue()
        queue.post { usleep(300_000) }
        #expect(!queue.flush(timeout: .milliseconds(20)))
        #expect(queue.flush(timeout: .seconds(10)))
        #expect(queue.isIdle)
    }

    @Test("with a capacity, posting waits while the queue is full: nothing is dropped")
    func backPressure() {
        let queue = SerialQueue(capacity: 1)
        let count = Mutex(0)
        for _ in 0..<50 { queue.post { count.withLock { $0 += 1 } } }
        #expect(queue.flush(timeout: .seconds(10)))
        #expect(count.withLock { $0 } == 50)
    }

    @Test("a queue whose thread ended after its idle lifetime runs the next job on a new one")
    func idleLifetime() {
        let queue = SerialQueue(idleLifetime: .milliseconds(10))
        let count = Mutex(0)
        queue.post { count.withLock { $0 += 1 } }
        #expect(queue.flush())
        usleep(50_000)
        queue.post { count.withLock { $0 += 1 } }
        #expect(queue.flush())
        #expect(count.withLock { $0 } == 2)
    }
}
