import Logging

/// The words that say which release an entry is about, for people: `shop v42 migrate`.
///
/// Both log handlers start a release's entries with them (`shop v42 migrate | Migrating…`), as
/// systemd starts a unit's messages with the unit's name, so `journalctl -u released` stays
/// readable while several apps release at once. The journal also carries them as fields
/// (`RELEASE_APP`, `RELEASE_NAME`, `RELEASE_TASK`).
enum ReleaseContext {
    /// `message` with the release's context in front, when the metadata names a release.
    /// A daemon message that already names the app and release ("queued shop v42") is left
    /// as it is; a task's lines always get the context.
    static func prefixed(_ message: String, metadata: Logger.Metadata) -> String {
        guard let app = text(metadata["release.app"]) else { return message }
        let name = text(metadata["release.name"])
        let task = text(metadata["release.task"])
        let release = name.map { "\(app) \($0)" } ?? app
        if task == nil, message.contains(release) { return message }
        return [release, task].compactMap { $0 }.joined(separator: " ") + " | " + message
    }

    private static func text(_ value: Logger.Metadata.Value?) -> String? {
        guard let value else { return nil }
        let s = "\(value)"
        return s.isEmpty ? nil : s
    }
}
