import ReleaseKit

/// The one seam between "this release may start" (the local queue says so) and "it runs
/// here": the local coordinator answers from the local queue alone; the cluster coordinator
/// also takes a lease in the cluster's database, and may answer that the release's deploy
/// runs (or ran) on another node, which this node then follows. The scheduler and the
/// release service do not know which one they have.
protocol Coordinator: Sendable {
    /// This node's name in a cluster (nil: no cluster).
    var node: String? { get }
    /// A release was admitted here and waits in `incoming/`: the cluster learns of its
    /// deploy key, its order and that this node has it.
    /// Called in the order releases are admitted, and returns at once.
    func admitted(_ release: ReleaseQueue.Entry)
    /// Asked when the local queue lets a release start; it does not start until the answer
    /// comes. A release that runs here can be stopped by the coordinator through `control`
    /// (a lease it cannot renew, a cancel asked for on another node).
    func acquire(_ release: ReleaseQueue.Entry, control: ReleaseControl) async -> CoordinatorGrant
    /// Output of a release running here (whole lines, masked), for the nodes that follow it.
    func publish(_ release: ReleaseQueue.Entry, _ bytes: [UInt8])
    /// Follows a release whose deploy key runs or ran on another node: its output into
    /// `write` until it ends. Nil when this daemon stops first (the request stays waiting).
    func follow(_ release: ReleaseQueue.Entry, write: @escaping @Sendable ([UInt8]) -> Void, control: ReleaseControl) async -> FollowedOutcome?
    /// The tasks of a release that ran here have ended with `record` (durable in `running/`
    /// as pending, in a cluster): returns the outcome to record and tell the release's caller —
    /// what the coordination committed, which every other node's caller is told too. Nil when
    /// the daemon stops before it could know (the release stays pending in `running/`, and is
    /// settled at the next start).
    func commit(_ release: ReleaseQueue.Entry, record: ReleaseRecord, control: ReleaseControl) async -> ReleaseRecord?
    /// A release ended with this record, durable in `done/`: run here, followed, or taken out
    /// of the queue without either (a cancel while it waited).
    func ended(_ release: ReleaseQueue.Entry, record: ReleaseRecord) async
    /// What says a release that runs here is not its app's first deploy, given what this
    /// node's records say (`local`; `tasks`: its first-deploy-only tasks): a cluster also asks
    /// its database (another node may have deployed the app). Nil when that cannot be known
    /// now.
    func firstDeploy(_ release: ReleaseQueue.Entry, tasks: [String], local: ReleasePlan.FirstDeploy) async -> ReleasePlan.FirstDeploy?
}

/// A coordinator's answer for a release that may start locally.
enum CoordinatorGrant: Sendable, Equatable {
    /// Run it here, now.
    case run
    /// Not now (the coordination cannot be reached, or an earlier release of its serial key
    /// runs or waits elsewhere): it waits again, at the head of its key — or behind `first`,
    /// the deploy key the cluster runs first, when this node has a request of it waiting.
    case wait(reason: String, first: String? = nil)
    /// Its deploy key runs or ran on that node: follow it there, run nothing.
    case follow(node: String)
    /// It cannot be accepted after all (its deploy key is another app's): rejected, run
    /// nothing, follow nothing.
    case reject(RejectReason)
}

/// How a followed release ended, as the cluster recorded it.
struct FollowedOutcome: Sendable {
    /// The running node's final record (masked); nil when it never recorded one (it was
    /// interrupted: it stopped renewing its lease).
    var record: ReleaseRecord?
    var state: ReleaseState
    /// The node that ran it.
    var ranOn: String
    var reason: String?
}
