import Glibc

/// Runs jobs one at a time, in the order they were posted, on a thread of its own — never on
/// the cooperative pool — so that a job that blocks (a `sendmsg` to a journald slow to read, a
/// `poll`) holds up only this queue. The journal writer, the sd_notify sender and blocking
/// calls all run on it.
///
/// - With a `capacity`, `post` waits while that many jobs wait: the poster slows down rather
///   than a job being dropped.
/// - `flush` returns once every job posted before it has *finished* running (not merely been
///   taken off the queue), or when its timeout passes.
/// - The thread starts with the first job and, with an `idleLifetime`, ends after that long
///   without one (the next job starts a new thread).
public final class SerialQueue: @unchecked Sendable {
    // @unchecked: every field is guarded by `mutex` (a heap-allocated pthread mutex, so it
    // never moves); the jobs themselves are Sendable.
    public typealias Job = @Sendable () -> Void

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    /// Signalled when a job is posted (for the thread) or one finishes (for `flush` and `post`).
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var jobs: [Job] = []
    private var head = 0
    private var posted: UInt64 = 0
    private var finished: UInt64 = 0
    private var threadRunning = false
    private let capacity: Int?
    private let idleLifetime: Duration?

    public init(capacity: Int? = nil, idleLifetime: Duration? = nil) {
        self.capacity = capacity
        self.idleLifetime = idleLifetime
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(changed, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    /// Queues a job (waits while `capacity` jobs wait).
    public func post(_ job: @escaping Job) {
        pthread_mutex_lock(mutex)
        if let capacity {
            while jobs.count - head >= capacity { pthread_cond_wait(changed, mutex) }
        }
        jobs.append(job)
        posted += 1
        let start = !threadRunning
        threadRunning = true
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
        if start && !startThread() {
            // No thread to be had: run what waits here rather than lose it.
            pthread_mutex_lock(mutex)
            threadRunning = false
            pthread_mutex_unlock(mutex)
            drainHere()
        }
    }

    /// Waits until every job posted so far has finished, at most `timeout`; whether they did.
    @discardableResult
    public func flush(timeout: Duration = .seconds(2)) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let target = posted
        var deadline = Self.deadline(after: timeout)
        while finished < target {
            if pthread_cond_timedwait(changed, mutex, &deadline) == ETIMEDOUT { return finished >= target }
        }
        return true
    }

    /// Whether no job waits or runs.
    public var isIdle: Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return finished == posted
    }

    private func startThread() -> Bool {
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attributes, 512 * 1024)
        let me = Unmanaged.passRetained(self)
        let rc = pthread_create(&thread, &attributes, { raw in
            let queue = Unmanaged<SerialQueue>.fromOpaque(raw!).takeRetainedValue()
            queue.work()
            return nil
        }, me.toOpaque())
        pthread_attr_destroy(&attributes)
        if rc != 0 { me.release() }
        return rc == 0
    }

    /// The thread's life: run jobs as they come; end after `idleLifetime` without one.
    private func work() {
        pthread_mutex_lock(mutex)
        while true {
            while head == jobs.count {
                if let idleLifetime {
                    var deadline = Self.deadline(after: idleLifetime)
                    if pthread_cond_timedwait(changed, mutex, &deadline) == ETIMEDOUT && head == jobs.count {
                        threadRunning = false
                        pthread_mutex_unlock(mutex)
                        return
                    }
                } else {
                    pthread_cond_wait(changed, mutex)
                }
            }
            runNext()
        }
    }

    /// Runs every waiting job on the calling thread (when no thread could be started).
    private func drainHere() {
        pthread_mutex_lock(mutex)
        while head < jobs.count { runNext() }
        pthread_mutex_unlock(mutex)
    }

    /// Runs the next job: called with `mutex` held, which is let go while the job runs.
    private func runNext() {
        let job = jobs[head]
        head += 1
        if head > 1024 && head * 2 > jobs.count {
            jobs.removeFirst(head)
            head = 0
        }
        pthread_mutex_unlock(mutex)
        job()
        pthread_mutex_lock(mutex)
        finished += 1
        pthread_cond_broadcast(changed)
    }

    private static func deadline(after duration: Duration) -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let (seconds, attoseconds) = duration.components
        var nanoseconds = Int(now.tv_nsec) + Int(attoseconds / 1_000_000_000)
        var wholeSeconds = Int(now.tv_sec) + Int(seconds)
        if nanoseconds >= 1_000_000_000 {
            wholeSeconds += 1
            nanoseconds -= 1_000_000_000
        }
        return timespec(tv_sec: wholeSeconds, tv_nsec: nanoseconds)
    }
}
