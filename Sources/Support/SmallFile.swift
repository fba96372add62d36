import Glibc
import SystemPackage

/// Reads small files the daemon does not write itself (the kernel's /proc files, an operator's
/// configuration): opened without blocking and without becoming a controlling terminal,
/// regular files only, at most `limit` bytes (a /proc file's size says nothing, so the limit
/// bounds the read, not a stat).
public enum SmallFile {
    public static func read(_ path: FilePath, limit: Int) throws(Errno) -> [UInt8] {
        let fd = try Syscalls.open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY)
        defer { Syscalls.close(fd) }
        guard try Syscalls.fstat(fd).st_mode & S_IFMT == S_IFREG else { throw .invalidArgument }
        return try Syscalls.read(fd, limit: limit)
    }
}
