import NIOCore
import PostgresNIO
import ReleaseKit

/// A deploy key's state in the cluster's database (`releasectl_deploys.state`): `queued` until
/// a node claims it, `running` while that node's lease lasts, then one of the final states —
/// never back (at most once). Bound as a statement's parameter and read back as itself; the
/// schema's check constraint lists the same cases.
enum DeployState: String, Sendable, CaseIterable {
    case queued, running, succeeded, failed, cancelled, interrupted

    /// A release's final state as the key records it (`rejected` never reaches the cluster: a
    /// rejected request has no key there).
    init(_ state: ReleaseState) {
        switch state {
        case .succeeded: self = .succeeded
        case .failed: self = .failed
        case .cancelled: self = .cancelled
        case .queued: self = .queued
        case .running: self = .running
        case .interrupted, .rejected: self = .interrupted
        }
    }

    /// The state a key's callers end with, once it has one.
    var releaseState: ReleaseState? {
        switch self {
        case .queued, .running: nil
        case .succeeded: .succeeded
        case .failed: .failed
        case .cancelled: .cancelled
        case .interrupted: .interrupted
        }
    }

    var isFinal: Bool { releaseState != nil }
}

extension DeployState: PostgresNonThrowingEncodable, PostgresDecodable {
    static var psqlType: PostgresDataType { String.psqlType }
    static var psqlFormat: PostgresFormat { String.psqlFormat }

    func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        rawValue.encode(into: &byteBuffer, context: context)
    }

    init<JSONDecoder: PostgresJSONDecoder>(from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat,
                                           context: PostgresDecodingContext<JSONDecoder>) throws {
        guard let state = DeployState(rawValue: try String(from: &buffer, type: type, format: format, context: context)) else {
            throw PostgresDecodingError.Code.failure
        }
        self = state
    }
}
