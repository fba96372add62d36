import FoundationEssentials
import Glibc
import SystemPackage

/// The spool: the drop directory that `releasectl` writes requests into and `released` works
/// through. Maildir-style, so that every hand-over is one atomic `rename(2)`:
///
/// ```
/// tmp/        a writer creates the request file here …
/// incoming/   … and renames it here when complete. This folder is the queue.
/// running/    a request moves here when its first task is about to start
/// done/       finished requests (<id>.json) and their records (<id>.record.json)
/// rejected/   requests that could not be accepted, with records saying why
/// cancel/     `releasectl cancel ID` drops an empty file named <id> here
/// logs/       <id>.log: all task output of a release, in order
/// .lock       held by the running daemon
/// ```
///
/// Every state change is durable (file and folder fsynced) before it is acted on.
public struct Spool: Sendable {
    public enum Folder: String, CaseIterable, Sendable {
        case tmp, incoming, running, done, rejected, cancel, logs
    }

    public static let defaultRoot: FilePath = "/var/lib/releasectl"
    public static let environmentVariable = "RELEASECTL_SPOOL"
    /// Folders: rwx for owner and group, setgid so files inherit the spool's group.
    public static let folderMode: mode_t = 0o2770
    /// Request, record and log files: never world-readable.
    public static let fileMode: mode_t = 0o640

    public let root: FilePath

    public init(root: FilePath) {
        self.root = root
    }

    /// `--spool` if given, else `$RELEASECTL_SPOOL`, else /var/lib/releasectl; made absolute.
    public static func resolve(option: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> Spool {
        let raw = option ?? environment[environmentVariable].flatMap { $0.isEmpty ? nil : $0 }
        guard let raw else { return Spool(root: defaultRoot) }
        return Spool(root: FilePath(raw).absolute())
    }

    public func path(_ folder: Folder) -> FilePath { root.appending(folder.rawValue) }
    public func path(_ folder: Folder, _ name: String) -> FilePath { root.appending(folder.rawValue).appending(name) }
    public var lockPath: FilePath { root.appending(".lock") }

    public func requestPath(_ folder: Folder, _ id: String) -> FilePath { path(folder, "\(id).json") }
    public func recordPath(_ folder: Folder, _ id: String) -> FilePath { path(folder, "\(id).record.json") }
    public func logPath(_ id: String) -> FilePath { path(.logs, "\(id).log") }

    // MARK: Set-up

    /// Creates the root and every missing folder (mode 2770). Existing folders are left as
    /// they are, so an operator's choice of group and mode stands.
    public func create() throws(SpoolError) {
        for dir in [root] + Folder.allCases.map(path) {
            do {
                try Syscalls.mkdir(dir, Self.folderMode)
                // mkdir applies the umask and may drop setgid: set the mode exactly.
                try Syscalls.chmod(dir, Self.folderMode)
            } catch .fileExists {
                continue
            } catch {
                throw SpoolError(.create, path: dir, errno: error)
            }
        }
    }

    /// The modes the daemon gives the folders it owns. The root and the folders writers drop
    /// files into are setgid and sticky (3770): a group member may add files but not rename or
    /// delete what is not theirs (another's request, the daemon's folders, `.lock`). The
    /// folders only the daemon writes are 2750: the group reads records and logs, and cannot
    /// remove or plant anything there.
    public static func tightMode(_ folder: Folder?) -> mode_t {
        switch folder {
        case nil, .tmp?, .incoming?, .cancel?: 0o3770
        case .running?, .done?, .rejected?, .logs?: 0o2750
        }
    }

    /// Folders of the spool that anyone may write to (the daemon refuses to start on those).
    public func worldWritableFolders() -> [FilePath] {
        ([root] + Folder.allCases.map(path)).filter { dir in
            // (A symlink's own mode says nothing; `takeOwnership` deals with links.)
            guard let st = try? Syscalls.lstat(dir), st.st_mode & S_IFMT == S_IFDIR else { return false }
            return st.st_mode & S_IWOTH != 0
        }
    }

    // MARK: Writing

    /// Writes bytes to `folder/name` atomically and durably: a temporary file in `tmp/` is
    /// written, fsynced, renamed over the target, and the target folder fsynced.
    /// `syncFolder: false` leaves the folder's fsync to a `move` into the same folder that
    /// follows at once; `durable: false` skips both fsyncs (progress files).
    public func writeAtomically(_ bytes: [UInt8], to folder: Folder, name: String, durable: Bool = true, syncFolder: Bool = true) throws(SpoolError) {
        let target = path(folder, name)
        let temporary = path(.tmp, ".\(name).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
        do throws(Errno) {
            try Self.write(bytes, via: temporary, to: target, fsyncFile: durable, fsyncFolder: durable && syncFolder ? path(folder) : nil)
        } catch {
            throw SpoolError(.write, path: target, errno: error)
        }
    }

    /// Spools a request the way every writer must: created in `tmp/`, fsynced, renamed into
    /// `incoming/`, and `incoming/` fsynced. Returns the path in `incoming/`.
    @discardableResult
    public func submit(_ request: ReleaseRequest) throws(SpoolError) -> FilePath {
        let name = "\(request.id).json"
        let target = path(.incoming, name)
        do throws(Errno) {
            try Self.write(request.encoded(), via: path(.tmp, name), to: target, fsyncFile: true, fsyncFolder: path(.incoming))
        } catch {
            throw SpoolError(.submit, path: target, errno: error)
        }
        return target
    }

    /// Creates `temporary` (0640, never an existing file), writes it, renames it to `target`;
    /// the temporary file is removed on any failure.
    private static func write(_ bytes: [UInt8], via temporary: FilePath, to target: FilePath, fsyncFile: Bool,
                              fsyncFolder: FilePath?) throws(Errno) {
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

    /// Moves `from/name` to `to/newName` and makes the move durable by fsyncing the target
    /// folder. (A rename is one journal transaction on ext4 and XFS, so that commits the
    /// source folder's side too; if a crash ever left a copy behind in the source folder,
    /// recovery recognises it by the record already in the target.)
    /// With `replace: false` an existing target is an error (EEXIST) rather than overwritten
    /// (the daemon is the only process that moves files out of `incoming/`).
    public func move(_ name: FilePath.Component, from: Folder, to: Folder, as newName: String, replace: Bool = false) throws(SpoolError) {
        let source = path(from).appending(name)
        let target = path(to, newName)
        do throws(Errno) {
            if !replace, exists(target) { throw Errno.fileExists }
            try Syscalls.rename(source, target)
            try Syscalls.fsyncDirectory(path(to))
        } catch {
            throw SpoolError(.move, path: source, errno: error)
        }
    }

    /// Removes a file if present.
    public func remove(_ folder: Folder, _ name: String) {
        try? Syscalls.unlink(path(folder, name))
    }

    // MARK: Reading

    /// The entries of a folder; an unreadable folder reads as empty.
    public func entries(_ folder: Folder) -> [FilePath.Component] {
        (try? Syscalls.listDirectory(path(folder))) ?? []
    }

    /// The ids of the requests (`<id>.json`) in a folder, sorted.
    public func requestIDs(in folder: Folder) -> [String] {
        entries(folder).compactMap { c -> String? in
            let s = c.string
            guard s.hasSuffix(".json"), !s.hasSuffix(".record.json") else { return nil }
            return String(s.dropLast(5))
        }.sorted()
    }

    public func exists(_ p: FilePath) -> Bool {
        (try? Syscalls.lstat(p)) != nil
    }

    /// Reads a whole (small) regular file: opened without following a link and without
    /// blocking (a FIFO planted in the spool cannot stall a reader), its type checked with
    /// fstat. With `trustedOwner` the file must belong to that user or to root (the daemon's
    /// records: anything else in its folders was not written by it).
    public func read(_ p: FilePath, limit: Int = ReleaseRequest.maximumFileSize * 8, trustedOwner: uid_t? = nil) throws(SpoolError) -> [UInt8] {
        do throws(Errno) {
            let fd = try Syscalls.open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
            defer { Syscalls.close(fd) }
            let st = try Syscalls.fstat(fd)
            guard st.st_mode & S_IFMT == S_IFREG else { throw Errno.invalidArgument }
            if let trustedOwner, st.st_uid != trustedOwner && st.st_uid != 0 { throw Errno.notPermitted }
            return try Syscalls.read(fd, limit: limit)
        } catch {
            throw SpoolError(.read, path: p, errno: error)
        }
    }

    /// The user the daemon's folders (`running/`, `done/`, `rejected/`, `logs/`) belong to:
    /// the daemon's. Only its files, and root's, are believed there — and nothing at all while
    /// `done/` is a link or writable by its group or others (a spool a writer made before the
    /// daemon first ran, which the daemon takes over and tightens when it starts).
    public var daemonUser: uid_t? {
        guard let st = try? Syscalls.lstat(path(.done)), st.st_mode & S_IFMT == S_IFDIR, st.st_mode & 0o022 == 0 else { return nil }
        return st.st_uid
    }

    /// A record, if the folder has one for this id written by the daemon (a file of anyone
    /// else's there is not believed).
    public func record(in folder: Folder, id: String) -> ReleaseRecord? {
        guard let owner = daemonUser, let bytes = try? read(recordPath(folder, id), trustedOwner: owner) else { return nil }
        return try? ReleaseRecord.decode(bytes)
    }

    /// Where a release is now.
    public enum Location: Sendable {
        case queued(ReleaseRequest?)
        case running(ReleaseRequest?, progress: ReleaseRecord?)
        case finished(ReleaseRecord)
    }

    /// Finds a release by id in the queue, among the running ones, or among the finished.
    ///
    /// After the first look for a record, the folders are looked at in the order a request
    /// moves through them (incoming → running → done/rejected, each final record written
    /// before the request leaves its folder), so a release that moves on while we look is
    /// found in a later folder rather than missed.
    public func locate(_ id: String) -> Location? {
        if let r = record(in: .done, id: id) ?? record(in: .rejected, id: id) { return .finished(r) }
        if exists(requestPath(.incoming, id)) { return .queued(readRequest(requestPath(.incoming, id))) }
        if exists(requestPath(.running, id)) {
            return .running(readRequest(requestPath(.running, id)), progress: record(in: .running, id: id))
        }
        if let r = record(in: .done, id: id) ?? record(in: .rejected, id: id) { return .finished(r) }
        return nil
    }

    /// A request file, if it is readable and valid.
    public func readRequest(_ p: FilePath) -> ReleaseRequest? {
        guard let bytes = try? read(p, limit: ReleaseRequest.maximumFileSize) else { return nil }
        var partial = ReleaseRequest.Partial()
        return try? ReleaseRequest.decode(bytes, partial: &partial)
    }

    /// The request of a finished release (for `retry`), wherever it was kept.
    public func finishedRequest(_ id: String) -> ReleaseRequest? {
        readRequest(requestPath(.done, id)) ?? readRequest(requestPath(.rejected, id))
    }

    /// Every finished record (done and rejected) written by the daemon.
    public func finishedRecords() -> [ReleaseRecord] {
        guard let owner = daemonUser else { return [] }
        var result: [ReleaseRecord] = []
        for folder in [Folder.done, .rejected] {
            for c in entries(folder) where c.string.hasSuffix(".record.json") {
                if let bytes = try? read(path(folder).appending(c), trustedOwner: owner), let r = try? ReleaseRecord.decode(bytes) {
                    result.append(r)
                }
            }
        }
        return result
    }
}

extension FilePath {
    /// This path made absolute against the current directory, with `.` and `..` resolved lexically.
    public func absolute() -> FilePath {
        var p = self
        if !p.isAbsolute {
            let cwd = FileManager.default.currentDirectoryPath
            p = FilePath(cwd).pushing(p)
        }
        return p.lexicallyNormalized()
    }
}
