import FoundationEssentials
import Glibc
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

    public static func read(_ name: FilePath.Component, spool: Spool, policy: IntakePolicy) throws(Rejection) -> ReleaseRequest {
        var partial = ReleaseRequest.Partial()
        func reject(_ code: RejectReason.Code, _ message: String) -> Rejection {
            Rejection(reason: RejectReason(code, message), partial: partial)
        }
        let fileName = name.string
        let fd: Int32
        do {
            fd = try Syscalls.open(spool.path(.incoming).appending(name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
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
        guard fileName == "\(request.id).json" else {
            throw reject(.fileName, "the file is named \(Masking.preview(fileName)) but its id is \(request.id): it must be named \(request.id).json")
        }
        return request
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

    /// Checks the request's app directory: absolute, no `..`, no control characters, an
    /// existing directory, inside an allowed app root once symlinks are resolved.
    public static func checkDirectory(_ directory: String, policy: IntakePolicy) throws(RejectReason) {
        func fail(_ message: String) -> RejectReason { RejectReason(.directory, message) }
        guard directory.hasPrefix("/") else {
            throw fail("\"directory\" \(Masking.preview(directory)) is not an absolute path")
        }
        guard !Syntax.hasControlCharacters(directory), !directory.utf8.contains(0) else {
            throw fail("\"directory\" \(Masking.preview(directory)) contains control characters")
        }
        guard !directory.split(separator: "/").contains("..") else {
            throw fail("\"directory\" \(Masking.preview(directory)) contains '..'")
        }
        let st: stat
        do { st = try Syscalls.statPath(FilePath(directory)) } catch {
            throw fail("the directory \(directory) does not exist or cannot be read (\(error))")
        }
        guard st.st_mode & S_IFMT == S_IFDIR else {
            throw fail("\(directory) is not a directory")
        }
        guard !policy.appRoots.isEmpty else { return }
        guard let resolved = realPath(directory) else { throw fail("cannot resolve \(directory)") }
        let inside = policy.appRoots.contains { root in
            resolved == root || resolved.hasPrefix(root.hasSuffix("/") ? root : root + "/")
        }
        guard inside else {
            throw fail("\(directory) is outside the allowed app roots (\(policy.appRoots.joined(separator: ", ")))")
        }
    }

    /// Validates what a request asks for, in full, as intake does: the directory, then the
    /// app's files (release.toml, Procfile, preset files), then the gates and tasks. With
    /// `credentials` (a root daemon releasing an app with a user of its own) the directory and
    /// the app's files are looked at as that user, never with more privilege than its tasks
    /// will have.
    public static func plan(app: String, directory: String, env: [String: String], tasks: [String]?, policy: IntakePolicy,
                            registry: [any ReleaseTask.Type], credentials: FileCredentials?) throws(RejectReason) -> ReleasePlan {
        let work = { () -> Result<ReleasePlan, RejectReason> in
            Result { () throws(RejectReason) -> ReleasePlan in
                try checkDirectory(directory, policy: policy)
                let inspection = try AppInspection.inspect(directory: directory, path: TaskEnvironment.path(for: env), registry: registry)
                return try ReleasePlan.make(app: app, directory: directory, env: env, tasks: tasks, registry: registry, inspection: inspection)
            }
        }
        guard let credentials else { return try work().get() }
        guard let result = credentials.perform(work) else {
            throw RejectReason(.user, "cannot look at the app's files as uid \(credentials.uid): the daemon could not switch its file credentials (it needs CAP_SETUID and CAP_SETGID)")
        }
        return try result.get()
    }

    /// The canonical, symlink-free form of a path.
    public static func realPath(_ path: String) -> String? {
        guard let p = Glibc.realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}
