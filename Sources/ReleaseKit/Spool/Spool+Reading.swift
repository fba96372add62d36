import Glibc
import ReleaseSupport
import SystemPackage

extension Spool {
    /// Reads a whole (small) regular file: opened without following a link and without
    /// blocking (a FIFO planted in the spool cannot stall a reader), its type checked with
    /// fstat. With `trustedOwner` the file must belong to that user or to root (the daemon's
    /// records: anything else in its folders was not written by it).
    public func read(_ p: FilePath, limit: Int = ReleaseRequest.maximumFileSize * 8, trustedOwner: uid_t? = nil) throws(SpoolError) -> [UInt8] {
        let path = p.withPlatformString { Array(UnsafeBufferPointer(start: $0, count: strlen($0) + 1)) }
        do throws(Errno) {
            return try Self.read(path, limit: limit, trustedOwner: trustedOwner)
        } catch {
            throw SpoolError(.read, path: p, errno: error)
        }
    }

    /// `read(_:limit:trustedOwner:)` of `folder/name`.
    public func read(_ folder: Folder, _ name: String, limit: Int = ReleaseRequest.maximumFileSize * 8,
                     trustedOwner: uid_t? = nil) throws(SpoolError) -> [UInt8] {
        do throws(Errno) {
            return try Self.read(cPath(folder, name), limit: limit, trustedOwner: trustedOwner)
        } catch {
            throw SpoolError(.read, path: path(folder, name), errno: error)
        }
    }

    private static func read(_ path: [CChar], limit: Int, trustedOwner: uid_t?) throws(Errno) -> [UInt8] {
        let fd = try Syscalls.open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
        defer { Syscalls.close(fd) }
        let st = try Syscalls.fstat(fd)
        guard st.st_mode & S_IFMT == S_IFREG else { throw Errno.invalidArgument }
        if let trustedOwner, st.st_uid != trustedOwner && st.st_uid != 0 { throw Errno.notPermitted }
        return try Syscalls.read(fd, limit: limit)
    }

    /// The user the daemon's folders (`running/`, `done/`, `rejected/`, `logs/`) belong to:
    /// the daemon's. Only its files, and root's, are believed there — and nothing at all while
    /// `done/` is a link or writable by its group or others (a spool a writer made before the
    /// daemon first ran, which the daemon takes over and tightens when it starts).
    public var daemonUser: uid_t? {
        guard let st = try? Syscalls.lstat(cPath(.done)), st.st_mode & S_IFMT == S_IFDIR, st.st_mode & 0o022 == 0 else { return nil }
        return st.st_uid
    }

    /// A record, if the folder has one for this id written by the daemon (a file of anyone
    /// else's there is not believed). A progress record (in `running/`) that does not decode
    /// is read again, twice at most: it may have been caught halfway through a rewrite in
    /// place (`recordProgress`), which takes microseconds.
    public func record(in folder: Folder, id: String) -> ReleaseRecord? {
        guard let owner = daemonUser else { return nil }
        for _ in 0..<(folder == .running ? 3 : 1) {
            guard let bytes = try? read(folder, "\(id).record.json", trustedOwner: owner) else { return nil }
            if let record = try? ReleaseRecord.decode(bytes) { return record }
        }
        return nil
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
        if exists(.incoming, "\(id).json") { return .queued(readRequest(.incoming, id)) }
        if exists(.running, "\(id).json") {
            return .running(readRequest(.running, id), progress: record(in: .running, id: id))
        }
        if let r = record(in: .done, id: id) ?? record(in: .rejected, id: id) { return .finished(r) }
        return nil
    }

    /// The request `folder/<id>.json`, if it is readable and valid.
    public func readRequest(_ folder: Folder, _ id: String) -> ReleaseRequest? {
        guard let bytes = try? read(folder, "\(id).json", limit: ReleaseRequest.maximumFileSize) else { return nil }
        var partial = ReleaseRequest.Partial()
        return try? ReleaseRequest.decode(bytes, partial: &partial)
    }

    /// The request of a finished release (for `retry`), wherever it was kept.
    public func finishedRequest(_ id: String) -> ReleaseRequest? {
        readRequest(.done, id) ?? readRequest(.rejected, id)
    }

    /// Every finished record (done and rejected) written by the daemon.
    public func finishedRecords() -> [ReleaseRecord] {
        guard let owner = daemonUser else { return [] }
        var result: [ReleaseRecord] = []
        for folder in [Folder.done, .rejected] {
            for name in entries(folder) where name.hasSuffix(".record.json") {
                if let bytes = try? read(folder, name.string, trustedOwner: owner), let r = try? ReleaseRecord.decode(bytes) {
                    result.append(r)
                }
            }
        }
        return result
    }
}
