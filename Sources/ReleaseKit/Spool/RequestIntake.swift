import FoundationEssentials
import Glibc
import ReleaseSupport
import SystemPackage

/// Who may drop requests and where apps may live; the daemon builds it from its config.
public struct IntakePolicy: Sendable {
    public var allowedUsers: Set<uid_t>
    public var allowedGroups: Set<gid_t>
    /// Resolved (symlink-free) app roots; empty allows any absolute directory.
    public var appRoots: [String]

    public init(allowedUsers: Set<uid_t>, allowedGroups: Set<gid_t>, appRoots: [String]) {
        self.allowedUsers = allowedUsers
        self.allowedGroups = allowedGroups
        self.appRoots = appRoots
    }
}

/// Reads and checks a file found in `incoming/`. Nothing in the spool is trusted: the file is
/// opened without following links and without blocking (a FIFO cannot stall the daemon), and
/// must be a regular, singly-linked file of at most 1 MiB owned by an allowed user or group,
/// holding a valid request whose id matches its name.
public enum RequestIntake {
    public struct Rejection: Error, Sendable {
        public var reason: RejectReason
        public var partial: ReleaseRequest.Partial
    }

    /// A request read from `incoming/`, and what its file was.
    public struct RequestFile: Sendable {
        public var request: ReleaseRequest
        public var identity: FileIdentity
        /// The file's owner: the submitter.
        public var owner: uid_t
    }

    /// How far ahead of the daemon's clock an id's time may be (ids are made by `releasectl`
    /// on the same host): an id dated later would sort ahead of every real release for ever.
    public static let futureTolerance: TimeInterval = 300

    /// Reads and checks `incoming/<name>`; `now` is the daemon's clock, for the id's date.
    public static func read(_ name: SpoolName, spool: Spool, policy: IntakePolicy, now: Date = Date()) throws(Rejection) -> RequestFile {
        var partial = ReleaseRequest.Partial()
        func reject(_ code: RejectReason.Code, _ message: String) -> Rejection {
            Rejection(reason: RejectReason(code, message), partial: partial)
        }
        let fileName = name.string
        let fd: Int32
        do {
            fd = try Syscalls.open(spool.cPath(.incoming, name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
        } catch .tooManySymbolicLinkLevels {
            throw reject(.symlink, "\(Masking.preview(fileName)) is a symbolic link")
        } catch {
            throw reject(.unreadable, "cannot open \(Masking.preview(fileName)): \(error)")
        }
        defer { Syscalls.close(fd) }
        let st: stat
        do { st = try Syscalls.fstat(fd) } catch { throw reject(.unreadable, "cannot stat \(Masking.preview(fileName)): \(error)") }
        let type = st.st_mode & S_IFMT
        guard type == S_IFREG else {
            throw reject(.notRegularFile, "\(Masking.preview(fileName)) is \(describe(type)), not a regular file")
        }
        guard st.st_nlink == 1 else {
            throw reject(.hardLink, "\(Masking.preview(fileName)) has \(st.st_nlink) hard links (a request must be a file of its own)")
        }
        guard st.st_size <= ReleaseRequest.maximumFileSize else {
            throw reject(.tooLarge, "\(Masking.preview(fileName)) is \(st.st_size) bytes, over the limit of \(ReleaseRequest.maximumFileSize) (1 MiB)")
        }
        guard policy.allowedUsers.contains(st.st_uid) || policy.allowedGroups.contains(st.st_gid) else {
            throw reject(.ownerNotAllowed, "\(Masking.preview(fileName)) is owned by uid \(st.st_uid) gid \(st.st_gid), neither of which may submit (allow-users / allow-groups)")
        }
        let bytes: [UInt8]
        do { bytes = try Syscalls.read(fd, limit: ReleaseRequest.maximumFileSize + 1) } catch {
            throw reject(.unreadable, "cannot read \(Masking.preview(fileName)): \(error)")
        }
        guard bytes.count <= ReleaseRequest.maximumFileSize else {
            throw reject(.tooLarge, "\(Masking.preview(fileName)) is over the limit of \(ReleaseRequest.maximumFileSize) bytes (1 MiB)")
        }
        let request: ReleaseRequest
        do { request = try ReleaseRequest.decode(bytes, partial: &partial) } catch {
            throw Rejection(reason: error, partial: partial)
        }
        guard request.id.timestamp.timeIntervalSince(now) <= futureTolerance else {
            throw reject(.futureID, "the id \(request.id) is dated \(Timestamp.format(request.id.timestamp)), ahead of this host's clock: ids are made by releasectl submit at the time of submission")
        }
        guard fileName == "\(request.id).json" else {
            throw reject(.fileName, "the file is named \(Masking.preview(fileName)) but its id is \(request.id): it must be named \(request.id).json")
        }
        return RequestFile(request: request, identity: FileIdentity(st), owner: st.st_uid)
    }

    static func describe(_ type: mode_t) -> String {
        switch type {
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO"
        case S_IFSOCK: "a socket"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFLNK: "a symbolic link"
        default: "a special file"
        }
    }

    /// The canonical, symlink-free form of a path.
    public static func realPath(_ path: String) -> String? {
        guard let p = Glibc.realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}
