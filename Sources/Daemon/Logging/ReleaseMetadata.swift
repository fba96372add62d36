import Logging
import ReleaseKit

extension Logger.Metadata {
    /// A release's metadata for its log entries — the journal's `RELEASE_ID`, `RELEASE_APP`,
    /// `RELEASE_NAME`, `RELEASE_PHASE`, `RELEASE_STATE` and, for a milestone, `MESSAGE_ID` —
    /// built in this one place; nil values are left out.
    static func release(id: String, app: String?, name: String?, phase: ReleasePhase?, state: String?, messageID: String? = nil) -> Logger.Metadata {
        var m: Logger.Metadata = ["release.id": "\(id)"]
        if let app { m["release.app"] = "\(app)" }
        if let name { m["release.name"] = "\(name)" }
        if let phase { m["release.phase"] = "\(phase.rawValue)" }
        if let state { m["release.state"] = "\(state)" }
        if let messageID { m["message.id"] = "\(messageID)" }
        return m
    }

    /// The metadata of a record's release.
    static func release(_ record: ReleaseRecord, messageID: String? = nil) -> Logger.Metadata {
        release(id: record.id, app: record.app, name: record.release, phase: record.phase, state: record.state.rawValue, messageID: messageID)
    }

    /// The metadata of a request's release in a state.
    static func release(_ request: ReleaseRequest, state: String, messageID: String? = nil) -> Logger.Metadata {
        release(id: request.id.rawValue, app: request.app, name: request.release, phase: request.phase, state: state, messageID: messageID)
    }
}
