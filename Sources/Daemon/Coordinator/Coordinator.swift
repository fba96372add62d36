import ReleaseKit

/// The one seam between "this release may start" (the local queue says so) and "it runs
/// here": the local coordinator answers from the local queue alone; a cluster coordinator
/// would also take a lease in a shared database. The scheduler does not know which it has.
protocol Coordinator: Sendable {
    /// Asked when the local queue lets a release start; the release does not start until the
    /// answer comes.
    func acquire(_ release: ReleaseQueue.Entry) async -> CoordinatorGrant
    /// The release that was granted here has ended with this record (durable in `done/`).
    func ended(_ release: ReleaseQueue.Entry, record: ReleaseRecord) async
}

/// A coordinator's answer for a release that may start locally.
enum CoordinatorGrant: Sendable, Equatable {
    /// Run it here, now.
    case run
    /// Not now (the coordination cannot be reached, or its key runs elsewhere): it waits
    /// again, at the head of its key.
    case wait(reason: String)
}
