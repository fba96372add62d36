import Synchronization

/// Runs a blocking call (poll, reading /proc, a metrics file write) on a thread of its own and
/// awaits its result.
///
/// Not on the cooperative pool, and not on Dispatch's global queues either: on Linux those
/// are as wide as the machine has cores, so two long blocking waits on a 2-core machine would
/// starve every other piece of work queued there. Each call gets a `SerialQueue` to itself (a
/// call never waits behind another, however long that one blocks); queues are kept once their
/// call returns and reused, their threads ending after 10 s without work.
public enum BlockingCall {
    public static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            BlockingQueues.shared.submit { continuation.resume(returning: body()) }
        }
    }
}

/// The queues behind `BlockingCall`: a call goes to an idle one if there is one, else to a
/// new one.
final class BlockingQueues: Sendable {
    static let shared = BlockingQueues()
    private let idle = Mutex<[SerialQueue]>([])

    func submit(_ job: @escaping SerialQueue.Job) {
        let queue = idle.withLock { $0.popLast() } ?? SerialQueue(idleLifetime: .seconds(10))
        queue.post { [self] in
            job()
            idle.withLock { $0.append(queue) }
        }
    }
}
