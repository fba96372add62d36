import CLinuxSyscalls
import Glibc
import ReleaseKit
import Synchronization
import SystemPackage

/// Watches every running host task from one thread with an epoll set: copies each task's
/// output into its sink as it comes, sees its leader exit (its pidfd readable) and its deadline
/// pass (one timerfd, armed for the earliest), and wakes the task waiting on it once. A task
/// costs no thread, event source or timer of its own, so its run is a few hand-offs between
/// threads rather than a dozen.
///
/// When the leader exits, what its output pipe holds is read and the pipe closed: a process the
/// task left behind that still holds the pipe (it is about to be ended) does not keep the task
/// from finishing.
final class ProcessMonitor: Sendable {
    static let shared = ProcessMonitor()

    /// Why a wait ended.
    enum Wake: Sendable {
        /// The leader exited (its output is all in the sink).
        case exited
        /// Its sink marked it (a container's init reported a task's end): see `Watched.mark`.
        case marked
        case deadline
        case stopped(StopReason)
        /// The monitor cannot watch any more (epoll_wait failed): the process is not watched,
        /// its output pipe is closed.
        case failed(Errno)

        var failure: Errno? {
            if case .failed(let error) = self { error } else { nil }
        }
    }

    /// One process being watched.
    final class Watched: Sendable {
        fileprivate let id: UInt64
        fileprivate let pidfd: Int32
        fileprivate let output: Int32
        fileprivate let sink: @Sendable (UnsafeRawBufferPointer) -> Void
        fileprivate let state = Mutex(State())

        fileprivate struct State {
            var exited = false
            /// Marked by its sink, and not yet unmarked.
            var marked = false
            /// Why the monitor stopped watching (it failed).
            var failure: Errno?
            /// Closed by the monitor's thread (the only one that reads it) at its end.
            var outputOpen = true
            var waiter: CheckedContinuation<Wake, Never>?
            var deadline: ContinuousClock.Instant?
            /// The stop observer of the current wait, taken back when the wait ends.
            var observer: (control: ReleaseControl, token: Int)?

            /// Ends the current wait: its continuation, with the observer let go.
            mutating func endWait() -> (CheckedContinuation<Wake, Never>?, (control: ReleaseControl, token: Int)?) {
                defer {
                    waiter = nil
                    deadline = nil
                    observer = nil
                }
                return (waiter, observer)
            }
        }

        fileprivate init(id: UInt64, pidfd: Int32, output: Int32, sink: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) {
            self.id = id
            self.pidfd = pidfd
            self.output = output
            self.sink = sink
        }

        /// Marks it (from its sink, on the monitor's thread): the current wait, or the next one,
        /// ends with `.marked` — until `unmark`. What the sink got before is in it.
        func mark() {
            let waiting = state.withLock { s in
                s.marked = true
                return s.waiter != nil
            }
            if waiting { finish(.marked) }
        }

        /// Whether the process has exited (the monitor saw its pidfd readable).
        var hasExited: Bool { state.withLock { $0.exited } }

        /// Takes the mark back (the one who waited has seen it).
        func unmark() { state.withLock { $0.marked = false } }

        /// Ends the current wait with `wake`, if there is one; `exited` marks the process so.
        fileprivate func finish(_ wake: Wake, exited: Bool = false) {
            let (waiter, observer) = state.withLock { s in
                if exited { s.exited = true }
                return s.endWait()
            }
            if let observer { observer.control.forget(observer.token) }
            waiter?.resume(returning: wake)
        }
    }

    private struct State {
        var watched: [UInt64: Watched] = [:]
        var nextID: UInt64 = 1
        /// When the timer goes off next (nil: disarmed).
        var armed: ContinuousClock.Instant?
        var started = false
        /// Why the monitor's thread stopped (epoll_wait failed): nothing is watched from then on.
        var failure: Errno?
    }

    private let epoll: Int32
    private let timer: Int32
    /// Why the epoll set or the timer could not be made (nothing can be watched then).
    private let setUpFailure: Errno?
    private let state = Mutex(State())
    private static let timerKey: UInt64 = 0

    private init() {
        epoll = rc_epoll_create()
        var failure = epoll < 0 ? Errno(rawValue: errno) : nil
        timer = rc_timer_create()
        if failure == nil, timer < 0 { failure = Errno(rawValue: errno) }
        if failure == nil, rc_epoll_ctl(epoll, RC_EPOLL_CTL_ADD, timer, UInt32(RC_EPOLLIN), Self.timerKey) != 0 {
            failure = Errno(rawValue: errno)
        }
        setUpFailure = failure
    }

    /// Starts watching a process: `output` (the read end of its stdout and stderr; the monitor
    /// closes it, also when this fails) and its pidfd (the caller's). Fails with the errno of
    /// what could not be made (the epoll set, the timer, the thread) or of epoll_ctl, or why
    /// the monitor stopped.
    func watch(pidfd: Int32, output: Int32, sink: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) throws(Errno) -> Watched {
        do throws(Errno) {
            if let setUpFailure { throw setUpFailure }
            let flags = fcntl(output, F_GETFL)
            _ = fcntl(output, F_SETFL, flags | O_NONBLOCK)
            // Registered under the lock: the monitor's thread finds the process only once both
            // are in the set (or neither, when this fails), and `fail` sees it whole or not at all.
            return try state.withLock { s throws(Errno) -> Watched in
                if let failure = s.failure { throw failure }
                if !s.started {
                    try startThread()
                    s.started = true
                }
                let w = Watched(id: s.nextID, pidfd: pidfd, output: output, sink: sink)
                s.nextID += 1
                let readable = UInt32(RC_EPOLLIN | RC_EPOLLHUP)
                guard rc_epoll_ctl(epoll, RC_EPOLL_CTL_ADD, output, readable, w.id << 1) == 0 else { throw Errno(rawValue: errno) }
                guard rc_epoll_ctl(epoll, RC_EPOLL_CTL_ADD, pidfd, UInt32(RC_EPOLLIN), w.id << 1 | 1) == 0 else {
                    let error = Errno(rawValue: errno)
                    _ = rc_epoll_ctl(epoll, RC_EPOLL_CTL_DEL, output, 0, 0)
                    throw error
                }
                s.watched[w.id] = w
                return w
            }
        } catch {
            Glibc.close(output)
            throw error
        }
    }

    /// Waits until the process has exited, its sink marks it, `deadline` passes or `control`
    /// stops the release, whichever comes first. Once it has exited (or while it is marked),
    /// returns `.exited` (`.marked`) at once.
    func wait(for watched: Watched, until deadline: ContinuousClock.Instant?, control: ReleaseControl?) async -> Wake {
        await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
            let ended = watched.state.withLock { s -> Wake? in
                if s.marked { return .marked }
                if s.exited { return .exited }
                if let failure = s.failure { return .failed(failure) }
                s.waiter = continuation
                s.deadline = deadline
                return nil
            }
            if let ended { return continuation.resume(returning: ended) }
            if let control {
                let token = control.observe { reason in
                    if let reason { watched.finish(.stopped(reason)) }
                }
                // Kept unless the wait ended already (then it is let go here).
                let kept = watched.state.withLock { s -> Bool in
                    guard s.waiter != nil else { return false }
                    s.observer = (control, token)
                    return true
                }
                if !kept { control.forget(token) }
            }
            if let deadline { arm(deadline) }
        }
    }

    /// Arms the timer for `deadline` if it goes off later than that (or not at all).
    private func arm(_ deadline: ContinuousClock.Instant) {
        state.withLock { s in
            guard s.armed.map({ deadline < $0 }) ?? true else { return }
            s.armed = deadline
            setTimer(deadline)
        }
    }

    /// Sets the timer to go off at `deadline` (at once when it has passed; in a day at the
    /// latest, when it is looked at again).
    private func setTimer(_ deadline: ContinuousClock.Instant) {
        let (seconds, attoseconds) = min(max(deadline - .now, .microseconds(1)), .seconds(86_400)).components
        _ = rc_timer_set(timer, seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// Starts the monitor's thread (detached; it lives as long as the daemon).
    private func startThread() throws(Errno) {
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attributes, 512 * 1024)
        let me = Unmanaged.passRetained(self)
        let rc = pthread_create(&thread, &attributes, { raw in
            Unmanaged<ProcessMonitor>.fromOpaque(raw!).takeRetainedValue().loop()
            return nil
        }, me.toOpaque())
        guard rc == 0 else {
            me.release()
            throw Errno(rawValue: rc)
        }
    }

    /// The thread's life: wait for events, handle them. Should epoll_wait fail, every wait
    /// ends with `.failed` and so does every watch from then on: releases fail, none hangs.
    private func loop() {
        var keys = [UInt64](repeating: 0, count: 64)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = rc_epoll_wait(epoll, &keys, 64, -1)
            if n < 0 {
                if errno == EINTR { continue }
                return fail(Errno(rawValue: errno))
            }
            for i in 0..<Int(n) {
                let key = keys[i]
                if key == Self.timerKey {
                    timerWentOff()
                    continue
                }
                guard let watched = state.withLock({ $0.watched[key >> 1] }) else { continue }
                if key & 1 == 0 {
                    if !drain(watched, into: &buffer) { closeOutput(watched) }
                } else {
                    exited(watched, buffer: &buffer)
                }
            }
        }
    }

    /// Stops watching anything, for `error`: each process is let go (its output pipe closed)
    /// and its wait ended.
    private func fail(_ error: Errno) {
        let all = state.withLock { s -> [Watched] in
            s.failure = error
            defer { s.watched = [:] }
            return Array(s.watched.values)
        }
        for watched in all {
            closeOutput(watched)
            watched.state.withLock { $0.failure = error }
            watched.finish(.failed(error))
        }
    }

    /// Copies what the output pipe holds into the sink, at most `drainLimit` reads of it (a
    /// task that writes without pause does not hold up the others: epoll reports the rest
    /// again); false at its end (or a read error).
    private func drain(_ watched: Watched, into buffer: inout [UInt8]) -> Bool {
        var reads = 0
        while reads < Self.drainLimit {
            let n = buffer.withUnsafeMutableBytes { read(watched.output, $0.baseAddress, $0.count) }
            if n > 0 {
                buffer.withUnsafeBytes { watched.sink(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                reads += 1
                continue
            }
            if n < 0 && errno == EINTR { continue }
            return n < 0 && errno == EAGAIN
        }
        return true
    }

    /// 16 reads of 64 KiB: a full pipe's worth many times over.
    private static let drainLimit = 16

    /// Stops watching the output pipe and closes it (once).
    private func closeOutput(_ watched: Watched) {
        guard watched.state.withLock({ s in defer { s.outputOpen = false }; return s.outputOpen }) else { return }
        _ = rc_epoll_ctl(epoll, RC_EPOLL_CTL_DEL, watched.output, 0, 0)
        Glibc.close(watched.output)
    }

    /// The leader exited: its output is read to what the pipe holds (all it wrote; at most
    /// `drainLimit` reads, as a process it left may still be writing) and the pipe closed, the
    /// process is forgotten, and its waiter (if any) woken.
    private func exited(_ watched: Watched, buffer: inout [UInt8]) {
        _ = rc_epoll_ctl(epoll, RC_EPOLL_CTL_DEL, watched.pidfd, 0, 0)
        if watched.state.withLock({ $0.outputOpen }) { _ = drain(watched, into: &buffer) }
        closeOutput(watched)
        _ = state.withLock { $0.watched.removeValue(forKey: watched.id) }
        watched.finish(.exited, exited: true)
    }

    /// Wakes the waits whose deadline has passed; arms the timer for the next one.
    private func timerWentOff() {
        var expirations: UInt64 = 0
        _ = read(timer, &expirations, 8)
        let now = ContinuousClock.now
        let all = state.withLock { s -> [Watched] in
            s.armed = nil
            return Array(s.watched.values)
        }
        var next: ContinuousClock.Instant?
        for watched in all {
            guard let deadline = watched.state.withLock({ $0.deadline }) else { continue }
            if deadline <= now {
                watched.finish(.deadline)
            } else {
                next = next.map { min($0, deadline) } ?? deadline
            }
        }
        if let next { arm(next) }
    }
}
