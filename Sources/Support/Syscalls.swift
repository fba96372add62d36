import CLinuxSyscalls
import Glibc
import SystemPackage

/// Thin throwing wrappers over the raw system calls the project's modules make: the one place
/// a descriptor is opened, read, written, listed, renamed or synced. Every call that can fail
/// reports an `Errno`; EINTR is retried here so callers never see it; every descriptor opened
/// here is close-on-exec.
public enum Syscalls {
    /// Runs `body` (a call returning -1 and setting errno on failure) until it is not
    /// interrupted; its result, or its errno.
    @discardableResult
    public static func retrying<T: BinaryInteger>(_ body: () -> T) throws(Errno) -> T {
        while true {
            let rc = body()
            if rc >= 0 { return rc }
            let e = Errno(rawValue: errno)
            if e == .interrupted { continue }
            throw e
        }
    }

    /// openat(2), relative to `dirfd`.
    public static func openat(_ dirfd: Int32, _ name: String, _ flags: Int32, _ mode: mode_t = 0) throws(Errno) -> Int32 {
        try retrying { Glibc.openat(dirfd, name, flags | O_CLOEXEC, mode) }
    }

    /// openat2(2) with `resolve` (`RC_RESOLVE_BENEATH`, `RC_RESOLVE_IN_ROOT`, …); ENOSYS before Linux 5.6.
    public static func openat2(_ dirfd: Int32, _ path: String, _ flags: Int32, resolve: UInt64, mode: mode_t = 0) throws(Errno) -> Int32 {
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
    public static func exchange(_ dirfd: Int32, _ a: String, _ b: String) throws(Errno) {
        try retrying { rc_renameat2(dirfd, a, dirfd, b, UInt32(RC_RENAME_EXCHANGE)) }
    }

    /// unlinkat(2): removes `name` in `dirfd` (a folder with `directory`).
    public static func unlinkat(_ dirfd: Int32, _ name: String, directory: Bool = false) throws(Errno) {
        try retrying { Glibc.unlinkat(dirfd, name, directory ? AT_REMOVEDIR : 0) }
    }

    /// fstatat(2): what `name` in `dirfd` is (the link itself unless `followingLinks`).
    public static func statAt(_ dirfd: Int32, _ name: String, followingLinks: Bool = false) throws(Errno) -> Glibc.stat {
        var st = Glibc.stat()
        try retrying { Glibc.fstatat(dirfd, name, &st, followingLinks ? 0 : AT_SYMLINK_NOFOLLOW) }
        return st
    }

    /// open(2).
    public static func open(_ path: FilePath, _ flags: Int32, _ mode: mode_t = 0) throws(Errno) -> Int32 {
        try retrying { path.withPlatformString { Glibc.open($0, flags | O_CLOEXEC, mode) } }
    }

    /// Opens again the inode an `O_PATH` descriptor holds, with `flags` (and O_CLOEXEC),
    /// through its magic link in /proc (the calling thread's file credentials apply).
    public static func reopen(_ fd: Int32, _ flags: Int32) throws(Errno) -> Int32 {
        try retrying { Glibc.open("/proc/self/fd/\(fd)", flags | O_CLOEXEC) }
    }

    /// fstat(2).
    public static func fstat(_ fd: Int32) throws(Errno) -> Glibc.stat {
        var st = Glibc.stat()
        try retrying { Glibc.fstat(fd, &st) }
        return st
    }

    /// lstat(2): the link itself.
    public static func lstat(_ path: FilePath) throws(Errno) -> Glibc.stat {
        var st = Glibc.stat()
        try retrying { path.withPlatformString { Glibc.lstat($0, &st) } }
        return st
    }

    /// stat(2): what the path leads to.
    public static func statPath(_ path: FilePath) throws(Errno) -> Glibc.stat {
        var st = Glibc.stat()
        try retrying { path.withPlatformString { fstatat(AT_FDCWD, $0, &st, 0) } }
        return st
    }

    /// rename(2).
    public static func rename(_ from: FilePath, _ to: FilePath) throws(Errno) {
        try retrying { from.withPlatformString { f in to.withPlatformString { t in Glibc.rename(f, t) } } }
    }

    /// unlink(2).
    public static func unlink(_ path: FilePath) throws(Errno) {
        try retrying { path.withPlatformString { Glibc.unlink($0) } }
    }

    /// mkdir(2).
    public static func mkdir(_ path: FilePath, _ mode: mode_t) throws(Errno) {
        try retrying { path.withPlatformString { Glibc.mkdir($0, mode) } }
    }

    /// chmod(2).
    public static func chmod(_ path: FilePath, _ mode: mode_t) throws(Errno) {
        try retrying { path.withPlatformString { Glibc.chmod($0, mode) } }
    }

    /// fsync(2).
    public static func fsync(_ fd: Int32) throws(Errno) {
        try retrying { Glibc.fsync(fd) }
    }

    /// close(2); its result is of no use (the descriptor is gone either way).
    public static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Writes all of `bytes`, retrying short writes.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(Errno) {
        let e: Errno? = bytes.withUnsafeBytes { p -> Errno? in
            do throws(Errno) { try writeAll(fd, p); return nil } catch { return error }
        }
        if let e { throw e }
    }

    /// Writes all of `bytes`, retrying short writes.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(Errno) {
        var offset = 0
        while offset < bytes.count {
            let n = try retrying { Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset) }
            offset += n
        }
    }

    /// Reads up to `limit` bytes (stops at end of file).
    public static func read(_ fd: Int32, limit: Int) throws(Errno) -> [UInt8] {
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
    public static func fsyncDirectory(_ path: FilePath) throws(Errno) {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try fsync(fd)
    }

    /// The entries of a directory, without `.` and `..`, as their raw bytes: a name that is
    /// not valid UTF-8 keeps its bytes, so it can still be opened and moved.
    public static func listDirectory(_ path: [CChar]) throws(Errno) -> [[UInt8]] {
        var names: [[UInt8]] = []
        try forEachEntry(path) { names.append(Array($0)) }
        return names
    }

    /// Calls `body` with the name (its bytes, no NUL) of each entry of a directory but `.` and
    /// `..`, without making a copy of it: for listings read often (/proc).
    public static func forEachEntry(_ path: [CChar], _ body: (UnsafeRawBufferPointer) -> Void) throws(Errno) {
        guard let dir = opendir(path) else { throw Errno(rawValue: errno) }
        defer { closedir(dir) }
        visit(dir, body)
    }

    /// `forEachEntry` of the directory open as `fd`, read through a duplicate of it (`fd`
    /// stays open, its position untouched).
    public static func forEachEntry(inDirectory fd: Int32, _ body: (UnsafeRawBufferPointer) -> Void) throws(Errno) {
        let copy = try retrying { fcntl(fd, F_DUPFD_CLOEXEC, 0) }
        guard let dir = fdopendir(copy) else {
            let error = Errno(rawValue: errno)
            close(copy)
            throw error
        }
        defer { closedir(dir) }
        rewinddir(dir)
        visit(dir, body)
    }

    private static func visit(_ dir: OpaquePointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        while let entry = readdir(dir) {
            withUnsafeBytes(of: entry.pointee.d_name) { raw in
                let name = UnsafeRawBufferPointer(rebasing: raw[..<(raw.firstIndex(of: 0) ?? raw.endIndex)])
                if name.isEmpty || (name.count == 1 && name[0] == 46) || (name.count == 2 && name[0] == 46 && name[1] == 46) { return }
                body(name)
            }
        }
    }

    /// One read(2) into `buffer` (EINTR retried): how many bytes, 0 at the end.
    public static func readSome(_ fd: Int32, into buffer: inout [UInt8]) throws(Errno) -> Int {
        try retrying { buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
    }

    /// The start of a small file the kernel makes (/proc, cgroup files), in one read into
    /// `buffer`: nil when it cannot be opened or read, or is empty. No type check and no stat
    /// (their sizes say nothing); opened without blocking.
    public static func readStart(_ path: String, into buffer: inout [UInt8]) -> ArraySlice<UInt8>? {
        guard let fd = try? open(FilePath(path), O_RDONLY | O_NONBLOCK | O_NOCTTY) else { return nil }
        defer { close(fd) }
        guard let n = try? readSome(fd, into: &buffer), n > 0 else { return nil }
        return buffer[0..<n]
    }

    // The same calls on paths given as NUL-terminated bytes (built by Spool without FilePath).

    /// open(2) of a NUL-terminated path.
    public static func open(_ path: [CChar], _ flags: Int32, _ mode: mode_t = 0) throws(Errno) -> Int32 {
        try retrying { Glibc.open(path, flags | O_CLOEXEC, mode) }
    }

    /// lstat(2) of a NUL-terminated path.
    public static func lstat(_ path: [CChar]) throws(Errno) -> Glibc.stat {
        var st = Glibc.stat()
        try retrying { Glibc.lstat(path, &st) }
        return st
    }

    /// rename(2) of NUL-terminated paths.
    public static func rename(_ from: [CChar], _ to: [CChar]) throws(Errno) {
        try retrying { Glibc.rename(from, to) }
    }

    /// unlink(2) of a NUL-terminated path.
    public static func unlink(_ path: [CChar]) throws(Errno) {
        try retrying { Glibc.unlink(path) }
    }

    /// Fsyncs a directory given as a NUL-terminated path.
    public static func fsyncDirectory(_ path: [CChar]) throws(Errno) {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try fsync(fd)
    }
}
