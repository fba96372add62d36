import FoundationEssentials
import Glibc
import ReleaseSupport
import SystemPackage

extension Spool {
    /// What `takeOwnership` changed.
    public struct TakeOver: Sendable {
        /// Folders that belonged to someone else (made by a writer before the daemon first ran).
        public var chowned: [FilePath] = []
        /// Files and folders of someone else's removed from the daemon's own folders.
        public var removedForeign = 0
        /// Symlinks or files found where a folder belongs, replaced by a folder (as root).
        public var replaced: [FilePath] = []
    }

    /// Makes every folder of the spool the daemon's own before it trusts any of them.
    ///
    /// Each folder must be a real folder (never a symlink) and belong to this process's user:
    /// a folder made by a writer (`releasectl submit` before the daemon's first start) is
    /// handed over with fchown when the daemon runs as root, and otherwise refused, saying how
    /// to fix it. The descriptor used is checked to still be what the path names afterwards,
    /// so a folder swapped for a link in between is refused too. Then each folder gets its
    /// tight mode (see `tightMode`), and whatever someone else left in the daemon's own folders
    /// (`running/`, `done/`, `rejected/`, `logs/` — where only the daemon writes) is removed:
    /// a record there that the daemon did not write is never believed. In a folder that was the
    /// daemon's already, the request files (`<id>.json`, the submitters' own, which the daemon
    /// moved there) stay; in one just taken over, nothing of anyone else's does.
    public func takeOwnership() throws(SpoolError) -> TakeOver {
        var report = TakeOver()
        let me = geteuid()
        // The root may be an operator's symlink (to another disk), never someone else's.
        if let link = try? Syscalls.lstat(root), link.st_mode & S_IFMT == S_IFLNK, link.st_uid != 0, link.st_uid != me {
            throw SpoolError(.own, path: root, errno: .notPermitted, detail: "it is a symbolic link made by uid \(link.st_uid)")
        }
        let rootFD: Int32
        do { rootFD = try Syscalls.open(root, O_RDONLY | O_DIRECTORY) } catch {
            throw SpoolError(.own, path: root, errno: error, detail: error == .tooManySymbolicLinkLevels || error == .notDirectory
                             ? "it must be a real folder, not a symbolic link or a file" : nil)
        }
        defer { Syscalls.close(rootFD) }
        try own(rootFD, path: root, folder: nil, report: &report)
        for folder in Folder.allCases {
            let dir = path(folder)
            let fd: Int32
            do { fd = try openFolder(folder, in: rootFD, report: &report) } catch {
                throw SpoolError(.own, path: dir, errno: error, detail: error == .tooManySymbolicLinkLevels || error == .notDirectory
                                 ? "it must be a real folder, not a symbolic link or a file: remove it and restart released" : nil)
            }
            defer { Syscalls.close(fd) }
            let chownedBefore = report.chowned.count
            try own(fd, path: dir, folder: folder, report: &report)
            // Already the daemon's: the requests in it are the submitters' files the daemon
            // moved there itself (claimed, finished, rejected), kept for `retry` and `status`.
            let wasMine = report.chowned.count == chownedBefore
            // Still the folder the name leads to (not swapped while it was being taken over).
            guard let opened = try? Syscalls.fstat(fd), let named = try? Syscalls.statAt(rootFD, folder.rawValue),
                  opened.st_dev == named.st_dev, opened.st_ino == named.st_ino else {
                throw SpoolError(.own, path: dir, errno: .resourceBusy, detail: "it was replaced while released took the spool over")
            }
            if Self.tightMode(folder) & 0o020 == 0 {
                // A folder only the daemon writes: nothing of anyone else's belongs in it.
                for name in TreeRemoval.names(in: fd) {
                    var st = stat()
                    guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0, st.st_uid != me, st.st_uid != 0 else { continue }
                    if wasMine, st.st_mode & S_IFMT == S_IFREG,
                       SpoolName(bytes: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) })?.requestID != nil { continue }
                    var removal = TreeRemoval(owner: st.st_uid, device: opened.st_dev)
                    if removal.remove(name, in: fd) { report.removedForeign += 1 }
                }
            }
        }
        return report
    }

    /// Opens a folder of the spool without following a link. As root, a symlink or file where
    /// the folder belongs (planted by whoever owned the spool before) is removed — itself, never
    /// what it points at — and the folder made afresh.
    private func openFolder(_ folder: Folder, in rootFD: Int32, report: inout TakeOver) throws(Errno) -> Int32 {
        do {
            return try Syscalls.openat(rootFD, folder.rawValue, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
        } catch .tooManySymbolicLinkLevels where geteuid() == 0 {
        } catch .notDirectory where geteuid() == 0 {
        } catch .noSuchFileOrDirectory {
        }
        if (try? Syscalls.statAt(rootFD, folder.rawValue)) != nil {
            try Syscalls.unlinkat(rootFD, folder.rawValue)
            report.replaced.append(path(folder))
        }
        try Syscalls.retrying { mkdirat(rootFD, folder.rawValue, Self.folderMode) }
        return try Syscalls.openat(rootFD, folder.rawValue, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
    }

    /// Owns, then tightens, one folder.
    private func own(_ fd: Int32, path dir: FilePath, folder: Folder?, report: inout TakeOver) throws(SpoolError) {
        let st: stat
        do { st = try Syscalls.fstat(fd) } catch { throw SpoolError(.own, path: dir, errno: error) }
        let me = geteuid()
        if st.st_uid != me {
            guard me == 0 else {
                throw SpoolError(.own, path: dir, errno: .notPermitted,
                                 detail: "it belongs to uid \(st.st_uid), not to released's user (uid \(me)): chown -R \(me) \(root) (or remove it and let released make it)")
            }
            guard fchown(fd, me, gid_t.max) == 0 else { throw SpoolError(.own, path: dir, errno: Errno(rawValue: errno)) }
            report.chowned.append(dir)
        }
        guard fchmod(fd, Self.tightMode(folder)) == 0 else { throw SpoolError(.own, path: dir, errno: Errno(rawValue: errno)) }
    }

    /// Removes what writes cut short left in `tmp/`: the daemon's own temporary files
    /// (`.<name>.tmp`) whatever their age, and anything older than `maximumAge`.
    ///
    /// `tmp/` is writable by every submitter, so this never follows a link and never leaves
    /// the folder (see `TreeRemoval`); and a submitter's leftover is removed with that
    /// submitter's own file credentials (`credentials(uid, gid)`; nil leaves it), so nothing
    /// the submitter could not remove itself can go. Returns how many entries were removed.
    @discardableResult
    public func removeLeftovers(maximumAge: Duration = .seconds(86_400), now: Date = Date(),
                                credentials: (uid_t, gid_t) -> FileCredentials?) -> Int {
        guard let fd = try? Syscalls.open(path(.tmp), O_RDONLY | O_DIRECTORY | O_NOFOLLOW),
              let folder = try? Syscalls.fstat(fd) else { return 0 }
        defer { Syscalls.close(fd) }
        let maximumSeconds = Int(maximumAge.components.seconds)
        var removed = 0
        for name in TreeRemoval.names(in: fd) {
            var st = stat()
            guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            let text = String(decoding: name.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let ours = text.hasPrefix(".") && text.hasSuffix(".tmp")
            let age = Int(now.timeIntervalSince1970) - Int(st.st_mtim.tv_sec)
            guard ours || age > maximumSeconds else { continue }
            let owner = st.st_uid, device = folder.st_dev
            let remove = { () -> Bool in
                var removal = TreeRemoval(owner: owner, device: device)
                return removal.remove(name, in: fd)
            }
            // As root, a submitter's leftover goes with the submitter's credentials; a daemon
            // that is not root has no privilege to lend, and removes it as itself.
            if geteuid() == 0, owner != 0 {
                guard let theirs = credentials(owner, st.st_gid) else { continue }
                removed += theirs.perform(remove) == true ? 1 : 0
            } else {
                removed += remove() ? 1 : 0
            }
        }
        return removed
    }
}
