import Glibc
import Logging
import ReleaseKit
import ReleaseSupport
import ReleaseWatcher
import ServiceLifecycle

/// Watches `incoming/` and `cancel/`: arms the watch, takes what is already there, says
/// READY, then hands each arrival and cancel to the scheduler as it comes. (Watch first, then
/// scan: a file arriving in between is seen by one or the other.) After an inotify overflow,
/// events were lost: it rescans. Stops watching when a graceful shutdown starts.
struct WatchService: Service {
    let scheduler: Scheduler
    let spool: Spool
    let notifier: SystemdNotifier
    let logger: Logger

    func run() async throws {
        // IN_CREATE too: a symlink, FIFO, directory or hard link made right in incoming/ gets
        // no IN_MOVED_TO or IN_CLOSE_WRITE, and must still be looked at (and rejected).
        let watcher = try DirectoryWatcher(folders: [spool.path(.incoming), spool.path(.cancel)],
                                           mask: DirectoryWatcher.arrivals | UInt32(IN_CREATE))
        await withGracefulShutdownHandler {
            await Self.rescan(spool: spool, scheduler: scheduler)
            notifier.ready()
            logger.notice("ready: watching \(spool.root)")
            for await batch in watcher.events() {
                if batch.overflowed {
                    logger.warning("inotify queue overflowed; rescanning the spool")
                    await Self.rescan(spool: spool, scheduler: scheduler)
                    continue
                }
                let arrivals = batch.events.filter { $0.folder == 0 && !Self.isBeingWritten($0, in: spool) }
                    .compactMap { $0.nameBytes.flatMap(SpoolName.init(bytes:)) }
                let cancels = batch.events.filter { $0.folder == 1 }.compactMap { $0.nameBytes.flatMap(SpoolName.init(bytes:)) }
                if !arrivals.isEmpty { await scheduler.arrived(Arrivals.look(arrivals, in: spool)) }
                if !cancels.isEmpty { await scheduler.processCancels(cancels) }
            }
        } onGracefulShutdown: {
            watcher.shutdown()
        }
    }

    /// Looks at everything in `incoming/` and `cancel/` (at start, after an inotify overflow,
    /// after a rejection could not be filed): listed and looked at here, off the event loop,
    /// and handed over in slices, so that a folder of 100,000 files never holds the loop.
    static func rescan(spool: Spool, scheduler: Scheduler) async {
        let found = await BlockingCall.run { Arrivals.look(spool.entries(.incoming), in: spool, sorted: true) }
        var start = 0
        while start < found.count {
            let end = min(start + 2048, found.count)
            await scheduler.arrived(Array(found[start..<end]))
            start = end
        }
        await scheduler.processCancels(spool.entries(.cancel))
    }

    /// A new regular file of its own (IN_CREATE alone) is still being written: its
    /// IN_CLOSE_WRITE will follow. Anything else that was created is looked at now.
    static func isBeingWritten(_ event: DirectoryWatcher.Event, in spool: Spool) -> Bool {
        guard event.mask & UInt32(IN_CREATE) != 0, event.mask & DirectoryWatcher.arrivals == 0,
              let name = event.nameBytes.flatMap(SpoolName.init(bytes:)) else { return false }
        guard let st = spool.fileStatus(.incoming, name) else { return true }
        return st.st_mode & S_IFMT == S_IFREG && st.st_nlink == 1
    }
}
