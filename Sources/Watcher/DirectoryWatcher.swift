import Glibc
import ReleaseSupport
import SystemPackage

/// Watches folders with inotify: files renamed into them (`IN_MOVED_TO`) or written and closed
/// there (`IN_CLOSE_WRITE`), plus whatever else the caller asks for.
///
/// When the kernel's event queue overflows (`IN_Q_OVERFLOW`) a batch says so with
/// `overflowed`, and the caller must rescan: events were lost. Closing the watcher ends
/// `events()` and wakes a blocked `next(timeout:)`.
public final class DirectoryWatcher: Sendable {
    /// One inotify event.
    public struct Event: Sendable {
        /// Index into the folders the watcher was created with.
        public var folder: Int
        /// The entry's name as its raw bytes (nil for an event on the folder itself).
        public var nameBytes: [UInt8]?
        public var mask: UInt32

        /// The entry's name as a path component.
        public var name: FilePath.Component? {
            nameBytes.flatMap { bytes in
                (bytes.map { CChar(bitPattern: $0) } + [0]).withUnsafeBufferPointer { FilePath.Component(platformString: $0.baseAddress!) }
            }
        }
    }

    /// What one read returned.
    public struct Batch: Sendable {
        public var events: [Event] = []
        /// Events were lost: rescan the folders.
        public var overflowed = false
    }

    public static let arrivals = UInt32(IN_MOVED_TO | IN_CLOSE_WRITE)

    private let fd: Int32
    private let wakeFD: Int32
    private let wakeWriteFD: Int32
    private let watches: [Int32]

    /// Starts watching; fails with the errno of `inotify_init1` or `inotify_add_watch`.
    public init(folders: [FilePath], mask: UInt32 = DirectoryWatcher.arrivals) throws(Errno) {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        var watches: [Int32] = []
        for folder in folders {
            let wd = folder.withPlatformString { inotify_add_watch(fd, $0, mask | UInt32(IN_ONLYDIR)) }
            guard wd >= 0 else {
                let e = Errno(rawValue: errno)
                close(fd)
                throw e
            }
            watches.append(wd)
        }
        var wake: [Int32] = [0, 0]
        guard pipe(&wake) == 0 else {
            let e = Errno(rawValue: errno)
            close(fd)
            throw e
        }
        for end in wake {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, O_NONBLOCK)
        }
        self.fd = fd
        self.wakeFD = wake[0]
        self.wakeWriteFD = wake[1]
        self.watches = watches
    }

    deinit {
        close(fd)
        close(wakeFD)
        close(wakeWriteFD)
    }

    /// Wakes any waiter and makes every later wait return nil.
    public func shutdown() {
        var one: UInt8 = 1
        _ = write(wakeWriteFD, &one, 1)
    }

    /// Waits up to `timeout` (forever when nil) for events. Returns an empty batch on time-out,
    /// nil after `shutdown()`.
    public func next(timeout: Duration? = nil) -> Batch? {
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        let ms: Int32 = timeout.map { Int32(clamping: max(0, $0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000)) } ?? -1
        while true {
            let rc = poll(&fds, 2, ms)
            if rc < 0 {
                if errno == EINTR { continue }
                return nil
            }
            break
        }
        if fds[1].revents != 0 { return nil }
        return drain()
    }

    /// Reads every queued event without blocking.
    public func drain() -> Batch {
        var batch = Batch()
        let size = 64 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: MemoryLayout<inotify_event>.alignment)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer, size)
            if n <= 0 { break }
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= n {
                let event = buffer.load(fromByteOffset: offset, as: inotify_event.self)
                let nameStart = offset + MemoryLayout<inotify_event>.size
                if event.mask & UInt32(IN_Q_OVERFLOW) != 0 { batch.overflowed = true }
                if let folder = watches.firstIndex(of: event.wd) {
                    var name: [UInt8]?
                    if event.len > 0 {
                        let bytes = UnsafeRawBufferPointer(start: buffer + nameStart, count: Int(event.len))
                        name = Array(bytes.prefix { $0 != 0 })
                    }
                    batch.events.append(Event(folder: folder, nameBytes: name, mask: event.mask))
                }
                offset = nameStart + Int(event.len)
            }
        }
        return batch
    }

    /// The batches as an async sequence. It is pull-based: the folders are read only when the
    /// consumer asks for the next batch, so while the consumer is busy events wait in the
    /// kernel's queue (bounded); if that overflows the next batch says `overflowed`. Each
    /// wait runs on a thread of its own (`BlockingCall`). Ends after `shutdown()`.
    public func events() -> Events { Events(watcher: self) }

    public struct Events: AsyncSequence, Sendable {
        public typealias Element = Batch
        let watcher: DirectoryWatcher

        public struct AsyncIterator: AsyncIteratorProtocol {
            let watcher: DirectoryWatcher

            public mutating func next() async -> Batch? {
                let watcher = watcher
                return await BlockingCall.run {
                    while true {
                        guard let batch = watcher.next() else { return nil }
                        if batch.overflowed || !batch.events.isEmpty { return batch }
                    }
                }
            }
        }

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(watcher: watcher) }
    }
}
