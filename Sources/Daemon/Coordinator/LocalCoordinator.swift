import ReleaseKit

/// The coordinator of a daemon on its own: the local queue's word is final, so every release
/// it lets start runs here, at once.
struct LocalCoordinator: Coordinator {
    func acquire(_ release: ReleaseQueue.Entry) async -> CoordinatorGrant { .run }
    func ended(_ release: ReleaseQueue.Entry, record: ReleaseRecord) async {}
}
