import Foundation
import ReleaseWatcher
import SystemPackage
import Testing

/// The inotify watcher: arrivals (a rename in, a file closed after writing) in the folders it
/// watches, with their names; nothing after `shutdown`.
@Suite("directory watcher")
struct DirectoryWatcherTests {
    @Test("a file renamed into a watched folder and one written there are each an event with its folder and name")
    func arrivals() throws {
        let root = NSTemporaryDirectory() + "releasectl-watch-\(UInt32.random(in: 0...UInt32.max))"
        let fm = FileManager.default
        for dir in ["a", "b", "tmp"] { try fm.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true) }
        defer { try? fm.removeItem(atPath: root) }
        let watcher = try DirectoryWatcher(folders: [FilePath(root + "/a"), FilePath(root + "/b")])
        defer { watcher.shutdown() }
        fm.createFile(atPath: root + "/tmp/x.json", contents: Data("{}".utf8))
        try fm.moveItem(atPath: root + "/tmp/x.json", toPath: root + "/b/x.json")
        fm.createFile(atPath: root + "/a/written", contents: Data("y".utf8))
        var seen: [(Int, String)] = []
        let deadline = ContinuousClock.now + .seconds(5)
        while seen.count < 2, ContinuousClock.now < deadline, let batch = watcher.next(timeout: .milliseconds(200)) {
            seen += batch.events.compactMap { e in e.name.map { (e.folder, $0.string) } }
        }
        #expect(seen.contains { $0 == (1, "x.json") }, "\(seen)")
        #expect(seen.contains { $0 == (0, "written") }, "\(seen)")
        watcher.shutdown()
        #expect(watcher.next(timeout: .milliseconds(50)) == nil, "events after shutdown")
    }
}
