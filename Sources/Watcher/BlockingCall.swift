import Glibc

/// Runs a blocking call (poll, waitid) on a thread of its own and awaits its result.
///
/// Not on the cooperative pool, and not on Dispatch's global queues either: on Linux those
/// are as wide as the machine has cores, so two long blocking waits on a 2-core machine would
/// starve every other piece of work queued there.
///
/// Each call still gets a thread to itself (a call never waits behind another, however long
/// that one blocks), but the threads are kept for a while once their call returns and reused:
/// the daemon makes a few such calls per task it runs, and creating a thread for each cost
/// more than the call.
public enum BlockingCall {
    public static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            BlockingThreads.shared.submit { continuation.resume(returning: body()) }
        }
    }
}

/// The threads behind `BlockingCall`: a job goes to an idle thread if there is one, else to a
/// new thread; a thread idle for `idleLifetime` ends.
final class BlockingThreads: @unchecked Sendable {
    // @unchecked: `idle` and every worker's `job` are only touched with `mutex` held (a
    // heap-allocated pthread mutex, so it never moves).
    typealias Job = @Sendable () -> Void

    static let shared = BlockingThreads()
    static let idleLifetime: Int = 10  // seconds

    /// One thread: the job handed to it, and the condition it waits on for one.
    private final class Worker {
        var job: Job?
        let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        let pool: BlockingThreads

        init(job: Job?, pool: BlockingThreads) {
            self.job = job
            self.pool = pool
            var attributes = pthread_condattr_t()
            pthread_condattr_init(&attributes)
            pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
            pthread_cond_init(wake, &attributes)
            pthread_condattr_destroy(&attributes)
        }

        deinit {
            pthread_cond_destroy(wake)
            wake.deallocate()
        }
    }

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    /// Threads waiting for a job, the most recently idle last.
    private var idle: [Worker] = []

    private init() {
        pthread_mutex_init(mutex, nil)
    }

    func submit(_ job: @escaping Job) {
        pthread_mutex_lock(mutex)
        if let worker = idle.popLast() {
            worker.job = job
            pthread_cond_signal(worker.wake)
            pthread_mutex_unlock(mutex)
            return
        }
        pthread_mutex_unlock(mutex)
        let worker = Worker(job: job, pool: self)
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attributes, 256 * 1024)
        var thread = pthread_t()
        let box = Unmanaged.passRetained(worker)
        let rc = pthread_create(&thread, &attributes, { raw in
            let worker = Unmanaged<Worker>.fromOpaque(raw!).takeRetainedValue()
            worker.pool.work(worker)
            return nil
        }, box.toOpaque())
        pthread_attr_destroy(&attributes)
        if rc != 0 {
            // No thread to be had: run it here rather than lose it.
            box.release()
            job()
        }
    }

    /// A thread's life: run the job it was given, then wait to be given another; end when
    /// none came for `idleLifetime`.
    private func work(_ worker: Worker) {
        while true {
            pthread_mutex_lock(mutex)
            let job = worker.job
            worker.job = nil
            pthread_mutex_unlock(mutex)
            job?()

            pthread_mutex_lock(mutex)
            idle.append(worker)
            var deadline = timespec()
            clock_gettime(CLOCK_MONOTONIC, &deadline)
            deadline.tv_sec += Self.idleLifetime
            while worker.job == nil {
                if pthread_cond_timedwait(worker.wake, mutex, &deadline) == ETIMEDOUT && worker.job == nil {
                    // Nobody took this thread off the idle list (that is done together with
                    // handing it a job): it ends.
                    idle.removeAll { $0 === worker }
                    pthread_mutex_unlock(mutex)
                    return
                }
            }
            pthread_mutex_unlock(mutex)
        }
    }
}
