import Glibc

/// Runs a blocking call (poll, waitid) on a thread of its own and awaits its result.
///
/// Not on the cooperative pool, and not on Dispatch's global queues either: on Linux those
/// are as wide as the machine has cores, so two long blocking waits on a 2-core machine would
/// starve every other piece of work queued there.
public enum BlockingCall {
    public static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            let box = Unmanaged.passRetained(Job(body: { continuation.resume(returning: body()) }))
            var attributes = pthread_attr_t()
            pthread_attr_init(&attributes)
            pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
            pthread_attr_setstacksize(&attributes, 256 * 1024)
            var thread = pthread_t()
            let rc = pthread_create(&thread, &attributes, { raw in
                let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
                job.body()
                return nil
            }, box.toOpaque())
            pthread_attr_destroy(&attributes)
            if rc != 0 {
                // No thread to be had: run it here rather than lose it.
                box.takeRetainedValue().body()
            }
        }
    }

    private final class Job: Sendable {
        let body: @Sendable () -> Void
        init(body: @escaping @Sendable () -> Void) { self.body = body }
    }
}
