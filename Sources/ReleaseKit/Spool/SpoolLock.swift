import Glibc
import SystemPackage

/// The spool's `.lock`: an open-file-description lock held by the running daemon for its
/// whole life (the descriptor is close-on-exec, so task processes never inherit it). The
/// kernel drops it when the daemon dies, however it dies.
public final class SpoolLock: Sendable {
    // Linux's F_OFD_* commands (fcntl.h with _GNU_SOURCE; not imported into Swift).
    static let F_OFD_GETLK: Int32 = 36
    static let F_OFD_SETLK: Int32 = 37

    let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    deinit { Syscalls.close(fd) }

    /// Takes the lock, or fails with EAGAIN when another daemon holds it.
    public static func acquire(_ spool: Spool) throws(SpoolError) -> SpoolLock {
        let fd: Int32
        do {
            fd = try Syscalls.open(spool.lockPath, O_RDWR | O_CREAT | O_NOFOLLOW, Spool.fileMode)
        } catch {
            throw SpoolError(.lock, path: spool.lockPath, errno: error)
        }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        if fcntl(fd, F_OFD_SETLK, &lock) != 0 {
            let e = Errno(rawValue: errno)
            Syscalls.close(fd)
            throw SpoolError(.lock, path: spool.lockPath, errno: e == .permissionDenied ? .resourceTemporarilyUnavailable : e)
        }
        return SpoolLock(fd: fd)
    }

    /// Whether some process holds the lock, tested without taking it.
    public static func isHeld(_ spool: Spool) -> Bool {
        guard let fd = try? Syscalls.open(spool.lockPath, O_RDONLY | O_NOFOLLOW) else { return false }
        defer { Syscalls.close(fd) }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        guard fcntl(fd, F_OFD_GETLK, &lock) == 0 else { return false }
        return lock.l_type != Int16(F_UNLCK)
    }
}
