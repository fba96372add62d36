import Glibc
import ReleaseSupport
import SystemPackage

/// The spool's `.lock`: an open-file-description write lock held by the running daemon for its
/// whole life (the descriptor is close-on-exec, so task processes never inherit it). The kernel
/// drops it when the daemon dies, however it dies.
///
/// Byte 0 is the daemon's. Byte 1 is its process guard's, locked on an open file of the guard's
/// own (`guardLock`), so it is let go only when the guard exits, once it has ended what a dead
/// daemon left running. A daemon started meanwhile takes byte 0 and waits for byte 1: the last
/// sweep of a dead daemon's guard (every process of an app's user started since its task)
/// never ends a task of the next daemon.
///
/// The file is the daemon's own, mode 0600, so no submitter can open it, and so none can hold
/// a lock on it to keep the daemon from starting. A `.lock` that is not such a file (made by
/// someone else, or group-readable as older versions made it, so that someone may hold it open)
/// is replaced: a fresh private file is locked first and then swapped in with one atomic
/// `renameat2(RENAME_EXCHANGE)`; if what it displaced turns out to be write-locked — another
/// daemon runs — it is swapped back and this daemon gives up. Daemons only ever take write
/// locks, so a read lock is never a daemon's. The CLI tests the lock without opening the file
/// (see `isHeld`).
public final class SpoolLock: Sendable {
    // Linux's F_OFD_* commands (fcntl.h with _GNU_SOURCE; not imported into Swift).
    static let F_OFD_GETLK: Int32 = 36
    static let F_OFD_SETLK: Int32 = 37
    static let name = ".lock"
    static let mode: mode_t = 0o600
    /// The daemon's byte and its guard's.
    static let daemonByte: off_t = 0
    static let guardByte: off_t = 1

    let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    deinit { Syscalls.close(fd) }

    /// Takes the lock, or fails with EAGAIN when another daemon holds it.
    public static func acquire(_ spool: Spool) throws(SpoolError) -> SpoolLock {
        func fail(_ e: Errno, _ detail: String? = nil) -> SpoolError { SpoolError(.lock, path: spool.lockPath, errno: e, detail: detail) }
        let rootFD: Int32
        do { rootFD = try Syscalls.open(spool.root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW) } catch { throw fail(error) }
        defer { Syscalls.close(rootFD) }
        let fd: Int32
        do { fd = try Syscalls.openat(rootFD, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK, mode) } catch {
            // Someone else's file, or a link: not a lock this daemon can trust.
            guard error == .permissionDenied || error == .tooManySymbolicLinkLevels else { throw fail(error, nil) }
            return try replace(in: rootFD, fail: fail)
        }
        if let st = try? Syscalls.fstat(fd), st.st_mode & S_IFMT == S_IFREG, st.st_uid == geteuid(), st.st_mode & 0o077 == 0 {
            if setLock(fd) { return SpoolLock(fd: fd) }
            if conflict(fd, byte: daemonByte) != Int16(F_RDLCK) {
                Syscalls.close(fd)
                throw fail(.resourceTemporarilyUnavailable)
            }
        }
        Syscalls.close(fd)
        return try replace(in: rootFD, fail: fail)
    }

    /// Swaps a fresh, locked, private lock file in for an untrustworthy `.lock`.
    private static func replace(in rootFD: Int32, fail: (Errno, String?) -> SpoolError) throws(SpoolError) -> SpoolLock {
        let fresh = ".lock.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        let fd: Int32
        do { fd = try Syscalls.openat(rootFD, fresh, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, mode) } catch { throw fail(error, nil) }
        _ = fchmod(fd, mode)
        guard setLock(fd) else {
            Syscalls.close(fd)
            try? Syscalls.unlinkat(rootFD, fresh)
            throw fail(.resourceTemporarilyUnavailable, nil)
        }
        do { try Syscalls.exchange(rootFD, fresh, name) } catch {
            Syscalls.close(fd)
            try? Syscalls.unlinkat(rootFD, fresh)
            throw fail(error, nil)
        }
        // `fresh` now names what was displaced: a daemon's lock is given back.
        let displaced = try? Syscalls.openat(rootFD, fresh, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
        let displacedStat = try? Syscalls.statAt(rootFD, fresh)
        // One that cannot be opened may still be a daemon's if it is root's or this user's.
        let held: Bool
        if let displaced {
            held = conflict(displaced, byte: daemonByte) == Int16(F_WRLCK)
        } else if let owner = displacedStat?.st_uid {
            held = owner == 0 || owner == geteuid()
        } else {
            held = false
        }
        if let displaced { Syscalls.close(displaced) }
        if held {
            try? Syscalls.exchange(rootFD, fresh, name)
            try? Syscalls.unlinkat(rootFD, fresh)
            Syscalls.close(fd)
            throw fail(.resourceTemporarilyUnavailable, nil)
        }
        try? Syscalls.unlinkat(rootFD, fresh)
        return SpoolLock(fd: fd)
    }

    /// Waits (up to `within`) until no process guard holds the guard's byte — that of a daemon
    /// that died before, still ending what it left running; false when it did not end in time.
    public func awaitGuard(within: Duration) async -> Bool {
        let clock = ContinuousClock(), until = clock.now + within
        // This daemon's own open file holds no lock on the byte: any that conflicts is a guard's.
        while Self.conflict(fd, byte: Self.guardByte) == Int16(F_WRLCK) {
            guard clock.now < until else { return false }
            do { try await Task.sleep(for: .milliseconds(10)) } catch { return false }
        }
        return true
    }

    /// The guard's byte, locked on an open file of its own (close-on-exec), for the daemon to
    /// hand to its process guard. Fails when `.lock` cannot be opened again, or the byte is
    /// still held (EAGAIN).
    public func lockForGuard() throws(SpoolError) -> FileDescriptor {
        // Through /proc: the very file this daemon locked, whatever its name now points at.
        let path = FilePath("/proc/self/fd/\(fd)")
        let again: Int32
        do { again = try Syscalls.open(path, O_RDWR) } catch {
            throw SpoolError(.lock, path: path, errno: error, detail: "\(error) (opening the spool lock again for the process guard)")
        }
        guard Self.setLock(again, byte: Self.guardByte) else {
            Syscalls.close(again)
            throw SpoolError(.lock, path: path, errno: .resourceTemporarilyUnavailable,
                             detail: "a process guard still holds byte \(Self.guardByte) of the spool lock")
        }
        return FileDescriptor(rawValue: again)
    }

    private static func setLock(_ fd: Int32, byte: off_t = daemonByte) -> Bool {
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = byte
        lock.l_len = 1
        return fcntl(fd, F_OFD_SETLK, &lock) == 0
    }

    /// The type of a lock on `byte` that would conflict with a write lock (F_UNLCK when none).
    private static func conflict(_ fd: Int32, byte: off_t) -> Int16 {
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = byte
        lock.l_len = 1
        guard fcntl(fd, F_OFD_GETLK, &lock) == 0 else { return Int16(F_UNLCK) }
        return lock.l_type
    }

    /// Whether a daemon holds the lock, tested without taking it and without opening the file
    /// (a submitter cannot open it): the kernel's list of locks (/proc/locks) is searched for a
    /// write lock on `.lock`'s inode from byte 0 (the daemon's; a guard alone holds byte 1). Where that list cannot be read, a process that may open
    /// the file asks fcntl instead.
    public static func isHeld(_ spool: Spool) -> Bool {
        guard let st = try? Syscalls.lstat(spool.lockPath), st.st_mode & S_IFMT == S_IFREG else { return false }
        if let fd = try? Syscalls.open(spool.lockPath, O_RDONLY | O_NOFOLLOW | O_NONBLOCK) {
            defer { Syscalls.close(fd) }
            return conflict(fd, byte: daemonByte) == Int16(F_WRLCK)
        }
        guard let locks = try? SmallFile.read(FilePath("/proc/locks"), limit: 16 << 20) else { return false }
        let key = Self.procLocksKey(device: st.st_dev, inode: st.st_ino)
        for line in String(decoding: locks, as: UTF8.self).split(separator: "\n") where !line.contains("->") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            // "1: OFDLCK ADVISORY WRITE -1 fe:00:16220235 0 0" (its first byte, then its last)
            if fields.count >= 7, fields[3] == "WRITE", fields[5] == key, fields[6] == "0" { return true }
        }
        return false
    }

    /// How /proc/locks names an inode: major and minor device numbers in two-digit hex, then
    /// the inode number.
    static func procLocksKey(device: dev_t, inode: ino_t) -> Substring {
        func hex(_ n: UInt64) -> String { n < 16 ? "0" + String(n, radix: 16) : String(n, radix: 16) }
        let dev = UInt64(device)
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfff)
        let minor = (dev & 0xff) | ((dev >> 12) & ~0xff)
        return Substring("\(hex(major)):\(hex(minor)):\(inode)")
    }
}
