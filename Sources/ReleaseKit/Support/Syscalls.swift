import CLinuxSyscalls
import Glibc
import SystemPackage

/// Thin throwing wrappers over the raw system calls ReleaseKit needs. Every call that can fail
/// reports an `Errno`; EINTR is retried here so callers never see it.
enum Syscalls {
    @discardableResult
    static func retrying<T: BinaryInteger>(_ body: () -> T) throws(Errno) -> T {
        while true {
            let rc = body()
            if rc >= 0 { return rc }
            let e = Errno(rawValue: errno)
            if e == .interrupted { continue }
            throw e
        }
    }

    static func openat(_ dirfd: Int32, _ name: String, _ flags: Int32, _ mode: mode_t = 0) throws(Errno) -> Int32 {
        try retrying { Glibc.openat(dirfd, name, flags | O_CLOEXEC, mode) }
    }

    /// openat2(2) with `resolve` (`RC_RESOLVE_BENEATH`, `RC_RESOLVE_IN_ROOT`, …); ENOSYS before Linux 5.6.
    static func openat2(_ dirfd: Int32, _ path: String, _ flags: Int32, resolve: UInt64, mode: mode_t = 0) throws(Errno) -> Int32 {
        // EAGAIN: the kernel could not resolve the path race-free this time (a rename nearby).
        var attempts = 0
        while true {
            do throws(Errno) {
                return try retrying { rc_openat2(dirfd, path, flags, mode, resolve) }
            } catch .resourceTemporarilyUnavailable where attempts < 8 {
                attempts += 1
            }
        }
    }

    /// renameat2(2) swapping two names atomically (RENAME_EXCHANGE).
    static func exchange(_ dirfd: Int32, _ a: String, _ b: String) throws(Errno) {
        try retrying { rc_renameat2(dirfd, a, dirfd, b, UInt32(RC_RENAME_EXCHANGE)) }
    }

    static func unlinkat(_ dirfd: Int32, _ name: String, directory: Bool = false) throws(Errno) {
        try retrying { Glibc.unlinkat(dirfd, name, directory ? AT_REMOVEDIR : 0) }
    }

    static func statAt(_ dirfd: Int32, _ name: String, followingLinks: Bool = false) throws(Errno) -> Glibc.stat {
        var st = Glibc.stat()
        try retrying { Glibc.fstatat(dirfd, name, &st, followingLinks ? 0 : AT_SYMLINK_NOFOLLOW) }
        return st
    }

    static func open(_ path: FilePath, _ flags: Int32, _ mode: mode_t = 0) throws(Errno) -> Int32 {
        try retrying { path.withPlatformString { Glibc.open($0, flags | O_CLOEXEC, mode) } }
    }

    /// Opens again the inode an `O_PATH` descriptor holds, with `flags` (and O_CLOEXEC),
    /// through its magic link in /proc (the calling thread's file credentials apply).
    static func reopen(_ fd: Int32, _ flags: Int32) throws(Errno) -> Int32 {
        try retrying { Glibc.open("/proc/self/fd/\(fd)", flags | O_CLOEXEC) }
    }

    static func fstat(_ fd: Int32) throws(Errno) -> Glibc.stat {
        var st = Glibc.stat()
        try retrying { Glibc.fstat(fd, &st) }
        return st
    }

    static func lstat(_ path: FilePath) throws(Errno) -> Glibc.stat {
        var st = Glibc.stat()
        try retrying { path.withPlatformString { Glibc.lstat($0, &st) } }
        return st
    }

    static func statPath(_ path: FilePath) throws(Errno) -> Glibc.stat {
        var st = Glibc.stat()
        try retrying { path.withPlatformString { fstatat(AT_FDCWD, $0, &st, 0) } }
        return st
    }

    static func rename(_ from: FilePath, _ to: FilePath) throws(Errno) {
        try retrying { from.withPlatformString { f in to.withPlatformString { t in Glibc.rename(f, t) } } }
    }

    static func unlink(_ path: FilePath) throws(Errno) {
        try retrying { path.withPlatformString { Glibc.unlink($0) } }
    }

    static func mkdir(_ path: FilePath, _ mode: mode_t) throws(Errno) {
        try retrying { path.withPlatformString { Glibc.mkdir($0, mode) } }
    }

    static func chmod(_ path: FilePath, _ mode: mode_t) throws(Errno) {
        try retrying { path.withPlatformString { Glibc.chmod($0, mode) } }
    }

    static func fsync(_ fd: Int32) throws(Errno) {
        try retrying { Glibc.fsync(fd) }
    }

    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Writes all of `bytes`, retrying short writes.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(Errno) {
        let e: Errno? = bytes.withUnsafeBytes { p -> Errno? in
            do throws(Errno) { try writeAll(fd, p); return nil } catch { return error }
        }
        if let e { throw e }
    }

    /// Writes all of `bytes`, retrying short writes.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(Errno) {
        var offset = 0
        while offset < bytes.count {
            let n = try retrying { Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset) }
            offset += n
        }
    }

    /// Reads up to `limit` bytes (stops at end of file).
    static func read(_ fd: Int32, limit: Int) throws(Errno) -> [UInt8] {
        var result = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while result.count < limit {
            let want = min(chunk.count, limit - result.count)
            let n = chunk.withUnsafeMutableBytes { p in Glibc.read(fd, p.baseAddress!, want) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Errno(rawValue: errno)
            }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<n])
        }
        return result
    }

    /// Fsyncs a directory so that renames into or out of it are durable.
    static func fsyncDirectory(_ path: FilePath) throws(Errno) {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try fsync(fd)
    }

    /// The entries of a directory, without `.` and `..`, as their raw bytes: a name that is
    /// not valid UTF-8 keeps its bytes, so it can still be opened and moved.
    static func listDirectory(_ path: [CChar]) throws(Errno) -> [[UInt8]] {
        guard let dir = opendir(path) else { throw Errno(rawValue: errno) }
        defer { closedir(dir) }
        var names: [[UInt8]] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
            if name == [46] || name == [46, 46] || name.isEmpty { continue }
            names.append(name)
        }
        return names
    }

    // The same calls on paths given as NUL-terminated bytes (built by Spool without FilePath).

    static func open(_ path: [CChar], _ flags: Int32, _ mode: mode_t = 0) throws(Errno) -> Int32 {
        try retrying { Glibc.open(path, flags | O_CLOEXEC, mode) }
    }

    static func lstat(_ path: [CChar]) throws(Errno) -> Glibc.stat {
        var st = Glibc.stat()
        try retrying { Glibc.lstat(path, &st) }
        return st
    }

    static func rename(_ from: [CChar], _ to: [CChar]) throws(Errno) {
        try retrying { Glibc.rename(from, to) }
    }

    static func unlink(_ path: [CChar]) throws(Errno) {
        try retrying { Glibc.unlink(path) }
    }

    static func fsyncDirectory(_ path: [CChar]) throws(Errno) {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try fsync(fd)
    }
}
