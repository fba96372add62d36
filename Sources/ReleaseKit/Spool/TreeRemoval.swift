import Glibc
import ReleaseSupport

/// Removes leftovers from a spool folder that others can write to (`tmp/`), as root, without
/// ever being led outside it.
///
/// Every step is relative to a descriptor of the folder being emptied, never a path: an entry
/// is looked at with `fstatat(AT_SYMLINK_NOFOLLOW)`, a symlink is unlinked itself (never
/// followed), and a directory is opened with `O_NOFOLLOW` and its descriptor checked to be the
/// directory just looked at before anything in it is touched. So a directory swapped for a
/// link to a root-only folder (`renameat2(RENAME_EXCHANGE)`) at any moment is at worst
/// unlinked as a link. A directory is descended into only when it belongs to `owner` and lies
/// on the folder's file system; and the caller runs the removal with the file credentials of
/// that owner, so the kernel itself refuses anything the owner could not remove. Depth and the
/// number of entries are bounded.
struct TreeRemoval {
    /// The only user whose directories are descended into.
    let owner: uid_t
    /// The file system (st_dev) the removal stays on.
    let device: dev_t
    static let maximumDepth = 16
    var budget = 1_000_000
    private(set) var removed = 0

    init(owner: uid_t, device: dev_t) {
        self.owner = owner
        self.device = device
    }

    /// Removes the entry `name` (a NUL-terminated name, bytes as they are) in the folder
    /// `parent`; true when it is gone.
    @discardableResult
    mutating func remove(_ name: [CChar], in parent: Int32, depth: Int = 0) -> Bool {
        guard budget > 0 else { return false }
        budget -= 1
        var st = stat()
        guard fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return false }
        guard st.st_mode & S_IFMT == S_IFDIR else {
            guard unlinkat(parent, name, 0) == 0 else { return false }
            removed += 1
            return true
        }
        guard depth < Self.maximumDepth, st.st_uid == owner, st.st_dev == device else { return false }
        let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return false }
        var emptied = false
        if let opened = try? Syscalls.fstat(fd), opened.st_dev == st.st_dev, opened.st_ino == st.st_ino {
            emptied = true
            for entry in Self.names(in: fd) where !remove(entry, in: fd, depth: depth + 1) {
                emptied = false
            }
        }
        Syscalls.close(fd)
        guard emptied, unlinkat(parent, name, AT_REMOVEDIR) == 0 else { return false }
        removed += 1
        return true
    }

    /// The names in a directory (without `.` and `..`, NUL-terminated, bytes as they are),
    /// read through a duplicate of `fd`.
    static func names(in fd: Int32) -> [[CChar]] {
        var names: [[CChar]] = []
        try? Syscalls.forEachEntry(inDirectory: fd) { name in names.append(name.map { CChar(bitPattern: $0) } + [0]) }
        return names
    }
}
