import FoundationEssentials
import Glibc
import ReleaseSupport
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
/// Every state change is durable (file and folder fsynced) before it is acted on. Writers
/// (`submit`, `requestCancel`) are in Spool+Writing.swift; the daemon's transitions — claim,
/// progress, finish, reject, cancel while queued — in Spool+Transitions.swift, and recovery
/// after a crash in Spool+Recovery.swift: nothing else renames a spool file.
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
    /// The root's path as bytes: the daemon's per-file paths are built from it by plain byte
    /// copies (`cPath`), not FilePath operations.
    private let rootBytes: [UInt8]
    /// Where a transition stops as if the daemon had died there (set only by the tests of
    /// recovery; see `CrashPoint`).
    var crashPoint: CrashPoint?

    public init(root: FilePath) {
        self.root = root
        rootBytes = root.withPlatformString { p in Array(UnsafeRawBufferPointer(start: p, count: strlen(p))) }
    }

    /// `root/folder/name` as a NUL-terminated path.
    func cPath(_ folder: Folder, _ name: some Collection<UInt8>) -> [CChar] {
        var bytes = rootBytes
        bytes.reserveCapacity(rootBytes.count + folder.rawValue.utf8.count + name.count + 3)
        bytes.append(UInt8(ascii: "/"))
        bytes.append(contentsOf: folder.rawValue.utf8)
        if !name.isEmpty {
            bytes.append(UInt8(ascii: "/"))
            bytes.append(contentsOf: name)
        }
        bytes.append(0)
        return bytes.map { CChar(bitPattern: $0) }
    }

    func cPath(_ folder: Folder, _ name: String) -> [CChar] { cPath(folder, name.utf8) }
    func cPath(_ folder: Folder, _ name: SpoolName) -> [CChar] { cPath(folder, name.bytes) }
    func cPath(_ folder: Folder) -> [CChar] { cPath(folder, EmptyCollection<UInt8>()) }

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

    /// Removes a file if present.
    func remove(_ folder: Folder, _ name: String) {
        try? Syscalls.unlink(cPath(folder, name))
    }

    /// The entries of a folder; an unreadable folder reads as empty.
    public func entries(_ folder: Folder) -> [SpoolName] {
        ((try? Syscalls.listDirectory(cPath(folder))) ?? []).compactMap(SpoolName.init(bytes:))
    }

    /// The ids of the requests (`<id>.json`) in a folder, sorted.
    public func requestIDs(in folder: Folder) -> [String] {
        entries(folder).compactMap { name -> String? in
            guard name.hasSuffix(".json"), !name.hasSuffix(".record.json") else { return nil }
            return String(decoding: name.bytes.dropLast(5), as: UTF8.self)
        }.sorted()
    }

    public func exists(_ p: FilePath) -> Bool {
        (try? Syscalls.lstat(p)) != nil
    }

    /// Whether `folder/name` exists (of any type; a link is not followed).
    public func exists(_ folder: Folder, _ name: String) -> Bool {
        (try? Syscalls.lstat(cPath(folder, name))) != nil
    }

    /// Whether `folder/name` exists (of any type; a link is not followed).
    public func exists(_ folder: Folder, _ name: SpoolName) -> Bool {
        (try? Syscalls.lstat(cPath(folder, name))) != nil
    }

    /// What `folder/name` is, not following a link; nil when it does not exist.
    public func fileStatus(_ folder: Folder, _ name: SpoolName) -> Glibc.stat? {
        try? Syscalls.lstat(cPath(folder, name))
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
