import Glibc
import ReleaseSupport
import SystemPackage

extension Spool {
    /// Spools a request the way every writer must: created in `tmp/`, fsynced, renamed into
    /// `incoming/`, and `incoming/` fsynced. Returns the path in `incoming/`.
    @discardableResult
    public func submit(_ request: ReleaseRequest) throws(SpoolError) -> FilePath {
        let name = "\(request.id).json"
        do throws(Errno) {
            try Self.write(request.encoded(), via: cPath(.tmp, name), to: cPath(.incoming, name), fsyncFile: true, fsyncFolder: cPath(.incoming))
        } catch {
            throw SpoolError(.submit, path: path(.incoming, name), errno: error)
        }
        return path(.incoming, name)
    }

    /// Drops `cancel/<id>`.
    public func requestCancel(_ id: ReleaseID) throws(SpoolError) {
        let target = path(.cancel, id.rawValue)
        do {
            let fd = try Syscalls.open(target, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK, Self.fileMode)
            Syscalls.close(fd)
            try Syscalls.fsyncDirectory(path(.cancel))
        } catch {
            throw SpoolError(.write, path: target, errno: error)
        }
    }

    /// Writes `bytes` to `folder/name` atomically: a temporary file in `tmp/` is written,
    /// fsynced, renamed over the target, and the target folder fsynced — each fsync only when
    /// `durable`; `syncFolder: false` leaves the folder's fsync to a move into the same folder
    /// that follows at once.
    func writeAtomically(_ bytes: [UInt8], to folder: Folder, name: String, durable: Bool = true, syncFolder: Bool = true) throws(SpoolError) {
        let target = cPath(folder, name)
        let temporary = cPath(.tmp, ".\(name).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
        do throws(Errno) {
            try Self.write(bytes, via: temporary, to: target, fsyncFile: durable, fsyncFolder: durable && syncFolder ? cPath(folder) : nil)
        } catch {
            throw SpoolError(.write, path: path(folder, name), errno: error)
        }
    }

    /// The one routine every durable file of the spool is written with: creates `temporary`
    /// (0640, never an existing file), writes it, fsyncs it, renames it to `target`, fsyncs
    /// the target's folder; the temporary file is removed on any failure.
    static func write(_ bytes: [UInt8], via temporary: [CChar], to target: [CChar], fsyncFile: Bool,
                      fsyncFolder: [CChar]?) throws(Errno) {
        do throws(Errno) {
            let fd = try Syscalls.open(temporary, O_WRONLY | O_CREAT | O_EXCL, fileMode)
            defer { Syscalls.close(fd) }
            _ = fchmod(fd, fileMode)
            try Syscalls.writeAll(fd, bytes)
            if fsyncFile { try Syscalls.fsync(fd) }
        } catch {
            try? Syscalls.unlink(temporary)
            throw error
        }
        do throws(Errno) {
            try Syscalls.rename(temporary, target)
            if let fsyncFolder { try Syscalls.fsyncDirectory(fsyncFolder) }
        } catch {
            try? Syscalls.unlink(temporary)
            throw error
        }
    }

    /// Moves `from/name` to `to/newName`; with `durable`, fsyncs the target folder. (A rename
    /// is one journal transaction on ext4 and XFS, so that commits the source folder's side
    /// too; if a crash ever left a copy behind in the source folder, recovery recognises it
    /// by the record already in the target.) With `replace: false` an existing target is an
    /// error (EEXIST) rather than overwritten.
    func move(_ name: SpoolName, from: Folder, to: Folder, as newName: String, replace: Bool = false,
              durable: Bool = true) throws(SpoolError) {
        let target = cPath(to, newName)
        do throws(Errno) {
            if !replace, (try? Syscalls.lstat(target)) != nil { throw Errno.fileExists }
            try Syscalls.rename(cPath(from, name), target)
            if durable { try Syscalls.fsyncDirectory(cPath(to)) }
        } catch {
            throw SpoolError(.move, path: path(from, name.string), errno: error)
        }
    }

    /// Fsyncs a folder: makes the renames into it so far durable (after `reject(durable: false)`).
    public func sync(_ folder: Folder) throws(SpoolError) {
        do throws(Errno) { try Syscalls.fsyncDirectory(cPath(folder)) } catch {
            throw SpoolError(.write, path: path(folder), errno: error)
        }
    }
}

extension Spool {
    /// Where the daemon of a cluster writes what `releasectl cluster status` shows (a folder
    /// only the daemon writes).
    public static let clusterStatusName = "cluster-status.json"

    /// Writes the cluster status file (not durably: it is rewritten every few seconds).
    public func writeClusterStatus(_ bytes: [UInt8]) throws(SpoolError) {
        try writeAtomically(bytes, to: .logs, name: Self.clusterStatusName, durable: false, syncFolder: false)
    }

    /// The cluster status file, if a daemon of a cluster wrote one.
    public func readClusterStatus() -> [UInt8]? {
        try? read(.logs, Self.clusterStatusName, limit: 4 << 20)
    }
}
