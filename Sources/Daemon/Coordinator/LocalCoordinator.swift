import ReleaseKit

/// The coordinator of a daemon on its own: the local queue's word is final, so every release
/// it lets start runs here, at once.
struct LocalCoordinator: Coordinator {
    var node: String? { nil }
    func admitted(_ release: ReleaseQueue.Entry) {}
    func acquire(_ release: ReleaseQueue.Entry, control: ReleaseControl) async -> CoordinatorGrant { .run }
    func publish(_ release: ReleaseQueue.Entry, _ bytes: [UInt8]) {}
    func follow(_ release: ReleaseQueue.Entry, write: @escaping @Sendable ([UInt8]) -> Void, control: ReleaseControl) async -> FollowedOutcome? {
        nil
    }
    func commit(_ release: ReleaseQueue.Entry, record: ReleaseRecord, control: ReleaseControl) async -> ReleaseRecord? { record }
    func ended(_ release: ReleaseQueue.Entry, record: ReleaseRecord) async {}
    func firstDeploy(_ release: ReleaseQueue.Entry, tasks: [String], local: ReleasePlan.FirstDeploy) async -> ReleasePlan.FirstDeploy? { local }
}
