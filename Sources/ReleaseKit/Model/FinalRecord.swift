import FoundationEssentials

/// Every final record a release can end with but the one its own run makes (`ReleaseProgress`
/// decides that one): one home, so that each says the same things the same way.
public enum FinalRecord {
    /// A file that cannot be accepted. What could be read of a broken file is kept only if it
    /// is valid as such; the reason is masked with the request's secrets when the request
    /// could be read.
    public static func rejected(stem: String, reason: RejectReason, partial: ReleaseRequest.Partial, request: ReleaseRequest?,
                                now: Date = Date()) -> ReleaseRecord {
        let partialApp = partial.app.flatMap { Syntax.isValidAppName($0) ? $0 : nil }
        let partialRelease = partial.release.flatMap { Syntax.isValidReleaseLabel($0) && $0.utf8.count <= 512 ? $0 : nil }
        let message = request.map { Masking.apply(reason.message, secretsOf: $0.env) } ?? reason.message
        var record = ReleaseRecord(id: stem, app: request?.app ?? partialApp, release: request?.release ?? partialRelease,
                                   phase: request?.phase ?? partial.phase ?? .default, state: .rejected, reason: message, directory: request?.directory,
                                   submittedAt: request?.submittedAt ?? partial.submittedAt,
                                   retryOf: request?.retryOf?.rawValue ?? partial.retryOf.flatMap { ReleaseID($0)?.rawValue })
        record.reasonCode = reason.code.rawValue
        record.image = request?.image
        record.finishedAt = now
        return record
    }

    /// A waiting release cancelled before anything of it ran.
    public static func cancelledBeforeStart(_ request: ReleaseRequest, now: Date = Date()) -> ReleaseRecord {
        var record = ReleaseRecord(id: request.id.rawValue, app: request.app, release: request.release, phase: request.phase, state: .cancelled,
                                   reason: "cancelled by releasectl cancel before it started", directory: request.directory,
                                   submittedAt: request.submittedAt, retryOf: request.retryOf?.rawValue)
        record.finishedAt = now
        return record
    }

    /// A release that followed its deploy key's run on another node: that run's record
    /// (`ran`, when the cluster has one) made this request's, with the state the cluster
    /// holds, or a bare one with the state and reason.
    public static func followed(_ request: ReleaseRequest, ran: ReleaseRecord?, state: ReleaseState, reason: String?, node: String?,
                                cluster: ClusterInfo, now: Date = Date()) -> ReleaseRecord {
        var record = ran ?? ReleaseRecord(id: request.id.rawValue, app: request.app, release: request.release, state: state, reason: reason)
        record.id = request.id.rawValue
        record.app = request.app
        record.release = request.release
        record.phase = request.phase
        record.state = state
        record.directory = request.directory
        record.image = request.image
        record.submittedAt = request.submittedAt
        record.retryOf = request.retryOf?.rawValue
        record.node = node
        record.cluster = cluster
        if record.finishedAt == nil { record.finishedAt = now }
        return record
    }

    /// A release that ran here and ended with `record`, whose outcome the cluster did not take
    /// before the lease ran out: `interrupted`, with what its tasks did.
    public static func notTaken(_ record: ReleaseRecord) -> ReleaseRecord {
        var interrupted = record
        interrupted.state = .interrupted
        let ended = record.state.rawValue + (record.reason.map { ": \($0)" } ?? "")
        interrupted.reason = "interrupted: its tasks ran here and ended (\(ended)), but the cluster could not take the outcome before this node's lease ran out; it is not re-run by itself (releasectl retry \(record.id))"
        return interrupted
    }

    /// A release the daemon died running: from its progress record when there is one (which
    /// says which task was running), else from its request.
    public static func interrupted(id: String, progress: ReleaseRecord?, request: ReleaseRequest?, now: Date) -> ReleaseRecord {
        var record = progress ?? ReleaseRecord(
            id: id, app: request?.app, release: request?.release, phase: request?.phase ?? .default, state: .running, directory: request?.directory,
            submittedAt: request?.submittedAt, retryOf: request?.retryOf?.rawValue)
        record.state = .interrupted
        record.reason = "interrupted: the daemon stopped while the release ran; it is not re-run by itself (releasectl retry \(id))"
        for i in record.tasks.indices {
            switch record.tasks[i].state {
            case .running:
                record.tasks[i].state = .cancelled
                record.tasks[i].reason = "interrupted while running"
            case .pending:
                // Progress is written without fsync: after a power loss a task recorded as
                // pending may in fact have started.
                record.tasks[i].state = .notRun
                record.tasks[i].reason = "the release was interrupted (not known to have started)"
            default: break
            }
        }
        record.finishedAt = now
        if let startedAt = record.startedAt {
            record.durationMs = Int64(now.timeIntervalSince(startedAt) * 1000)
        }
        return record
    }
}
