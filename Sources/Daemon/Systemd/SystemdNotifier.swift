import CSystemd
import Glibc
import ReleaseSupport
import Synchronization

/// Talks to the service manager through `sd_notify(3)`. Without `NOTIFY_SOCKET` every call is
/// a no-op, so the daemon behaves the same outside systemd.
///
/// The notifier keeps the daemon's current status line so that what systemd shows is always
/// the scheduler's latest word:
/// - while starting and while reloading, `status(_:)` only records the text, and the next
///   `READY=1` carries it — systemd sees `READY=1` with the status at that moment, never a
///   running-state status before the daemon is ready;
/// - an unchanged status is not sent again.
///
/// Messages go out in the order the calls are made, from a queue of their own: a service
/// manager that is slow to read (or a socket nobody reads) holds up only that queue, never
/// the event loop; status lines waiting to be sent are coalesced to the latest.
public final class SystemdNotifier: Sendable {
    private enum Phase { case starting, reloading, running, stopping }

    private struct State {
        var phase = Phase.starting
        /// The scheduler's latest status line.
        var current = ""
        /// The last `STATUS=` sent.
        var shown: String?
    }

    private let state = Mutex(State())
    private let outbox = Outbox()

    public init() {}

    /// Whether the daemon has said READY=1 and is not stopping or reloading.
    var isRunning: Bool { state.withLock { $0.phase == .running } }

    /// Records what the daemon is doing ("idle, 12 done", "shop v42: migrate (1/3)") and, once
    /// the daemon is ready, sends it as `STATUS=` if it changed.
    public func status(_ text: String) {
        state.withLock { s in
            s.current = text
            guard s.phase == .running || s.phase == .stopping, s.shown != text else { return }
            s.shown = text
            outbox.post(["STATUS=\(text)"], replacesStatus: true)
        }
    }

    /// `READY=1` with the current status: start-up (spool recovered, watch armed) or a reload
    /// is complete.
    /// Not after `stopping`: a shutdown that starts while the start-up scan runs ends with
    /// STOPPING=1 alone.
    public func ready() {
        state.withLock { s in
            guard s.phase != .stopping else { return }
            s.phase = .running
            s.shown = s.current
            outbox.post(["READY=1", "STATUS=\(s.current)"])
        }
    }

    /// `RELOADING=1` with the `MONOTONIC_USEC` systemd 253+ expects alongside it; status
    /// updates wait for the `ready()` that ends the reload.
    public func reloading() {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let usec = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
        state.withLock { s in
            s.phase = .reloading
            s.shown = "reloading configuration"
            outbox.post(["RELOADING=1", "MONOTONIC_USEC=\(usec)", "STATUS=reloading configuration"])
        }
    }

    /// `STOPPING=1`: a graceful shutdown started. Status updates continue.
    public func stopping(status: String) {
        state.withLock { s in
            s.phase = .stopping
            s.current = status
            s.shown = status
            outbox.post(["STOPPING=1", "STATUS=\(status)"])
        }
    }

    /// `WATCHDOG=1`: the event loop is alive.
    public func watchdog() {
        outbox.post(["WATCHDOG=1"])
    }

    /// Reports a fatal start-up error (`ERRNO=` and why) before the daemon exits, so
    /// `systemctl status` shows the reason.
    public func failed(errno: Int32, status: String) {
        state.withLock { s in
            s.shown = status
            outbox.post(["ERRNO=\(errno)", "STATUS=\(status)"])
        }
        outbox.flush(timeout: .seconds(2))
    }

    /// Waits (bounded) until everything posted so far has been sent, e.g. before exiting.
    public func flush() { outbox.flush(timeout: .seconds(2)) }

    /// Half the watchdog interval systemd asked for (`WATCHDOG_USEC`, when `WATCHDOG_PID` is
    /// unset or this process), or nil when no watchdog is wanted.
    public var watchdogPingInterval: Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(usec / 2))
    }

    /// One datagram of newline-separated assignments. A status line is made one line: a
    /// newline inside it would start a new assignment.
    fileprivate static func send(_ assignments: [String]) {
        let state = assignments.map { $0.replacing("\n", with: " ") }.joined(separator: "\n")
        _ = sd_notify(0, state)
    }
}

/// The messages waiting to be sent, in order, from a `SerialQueue` of their own; a status line
/// still waiting when the next one comes is replaced by it.
private final class Outbox: Sendable {
    private struct Pending {
        var messages: [(assignments: [String], statusOnly: Bool)] = []
    }

    private let pending = Mutex(Pending())
    private let queue = SerialQueue()

    func post(_ assignments: [String], replacesStatus: Bool = false) {
        guard getenv("NOTIFY_SOCKET") != nil else { return }
        let replaced = pending.withLock { p -> Bool in
            if replacesStatus, let last = p.messages.last, last.statusOnly {
                p.messages[p.messages.count - 1] = (assignments, true)
                return true
            }
            p.messages.append((assignments, replacesStatus))
            return false
        }
        // One job per message kept: each sends the oldest waiting (a replaced status line
        // goes out, as its latest text, with the job of the one it replaced).
        guard !replaced else { return }
        queue.post { [self] in sendNext() }
    }

    private func sendNext() {
        if let next = pending.withLock({ $0.messages.isEmpty ? nil : $0.messages.removeFirst() }) {
            SystemdNotifier.send(next.assignments)
        }
    }

    func flush(timeout: Duration) {
        queue.flush(timeout: timeout)
    }
}
