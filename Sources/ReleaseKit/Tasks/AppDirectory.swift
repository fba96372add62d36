import CLinuxSyscalls
import Glibc
import ReleaseSupport
import Synchronization
import SystemPackage

/// An app's files as intake and `plan` read them: opened *beneath* the app directory, never
/// leaving it.
///
/// The app's files are untrusted (an app author writes them, and a root daemon reads them), so
/// every name is resolved by the kernel with `openat2(2)` relative to a descriptor of the
/// directory: `RESOLVE_BENEATH` for an app directory (a symlink that stays inside is followed;
/// one that is absolute or climbs out fails), `RESOLVE_IN_ROOT` for an image's working
/// directory (an absolute link means the image's own path, never the host's). Magic links
/// (`/proc/self/fd/…`) are never followed. Where `openat2` is missing (Linux before 5.6) each
/// component is walked by hand with `O_NOFOLLOW`, by the same rules. Only regular files are
/// opened and read (a device, FIFO or socket is looked at through an `O_PATH` descriptor,
/// never opened), without blocking, and no more than a limit. A file
/// that cannot be used is a `RejectReason` naming it — and quoting nothing of what a link
/// pointed at.
public final class AppDirectory: Sendable {
    /// How names are resolved.
    public enum Resolution: Sendable {
        /// Beneath the directory: nothing outside it is reachable.
        case beneath
        /// As if the root descriptor were `/` (an image's root folder).
        case inRoot
    }

    /// The directory as messages name it (the request's directory, or the image's working
    /// directory).
    public let shownPath: String
    private let rootFD: Int32
    /// The working directory inside the root (`inRoot`), without leading or trailing slashes.
    private let prefix: String
    private let resolution: Resolution
    private let useOpenat2: Bool
    /// For an image: its name, said after the paths of its files.
    private let image: String?
    /// Every name looked at, with what it was (nil: absent), for `fingerprint`.
    private let seen = Mutex<[String: FileIdentity?]>([:])

    private init(rootFD: Int32, prefix: String, resolution: Resolution, shownPath: String, useOpenat2: Bool, image: String? = nil) {
        self.rootFD = rootFD
        self.prefix = prefix
        self.resolution = resolution
        self.shownPath = shownPath
        self.useOpenat2 = useOpenat2
        self.image = image
    }

    /// What everything read so far depended on: the directory itself (its change time moves
    /// when a name is added, removed or renamed in it) and every name looked at, present or
    /// not. If a later look finds the same, a second reading would find the same too.
    public var fingerprint: [String: FileIdentity?] {
        var result = seen.withLock { $0 }
        result["."] = (try? Syscalls.fstat(rootFD)).map(FileIdentity.init)
        return result
    }

    /// Whether every name of `fingerprint` is still what it was.
    public func matches(_ fingerprint: [String: FileIdentity?]) -> Bool {
        fingerprint.allSatisfy { name, identity in
            if name == "." { return (try? Syscalls.fstat(rootFD)).map(FileIdentity.init) == identity }
            return lookUp(name) == identity
        }
    }

    /// What a name is now (nil: absent or unusable), without reading it.
    private func lookUp(_ name: String) -> FileIdentity? {
        guard let fd = try? open(name, RC_O_PATH) else { return nil }
        defer { Syscalls.close(fd) }
        return (try? Syscalls.fstat(fd)).map(FileIdentity.init)
    }

    deinit { Syscalls.close(rootFD) }

    /// Opens an app directory given by an absolute path (already checked by intake).
    public static func open(_ directory: String, useOpenat2: Bool = true) throws(RejectReason) -> AppDirectory {
        do {
            let fd = try Syscalls.open(FilePath(directory), RC_O_PATH | O_DIRECTORY)
            return AppDirectory(rootFD: fd, prefix: "", resolution: .beneath, shownPath: directory, useOpenat2: useOpenat2)
        } catch {
            throw RejectReason(.directory, "cannot open the app directory \(directory): \(error)")
        }
    }

    /// Opens the working directory `workingDirectory` (absolute, as the image says) of an image
    /// whose root folder is mounted at `root`; messages name it as `workingDirectory` of `image`.
    public static func open(imageRoot root: String, workingDirectory: String, image: String = "the image",
                            useOpenat2: Bool = true) throws(RejectReason) -> AppDirectory {
        do {
            let fd = try Syscalls.open(FilePath(root), RC_O_PATH | O_DIRECTORY)
            let prefix = workingDirectory.split(separator: "/").joined(separator: "/")
            return AppDirectory(rootFD: fd, prefix: prefix, resolution: .inRoot, shownPath: workingDirectory, useOpenat2: useOpenat2,
                                image: image)
        } catch {
            throw RejectReason(.directory, "cannot open the image's root folder: \(error)")
        }
    }

    /// The bytes of the regular file `name` (relative), nil when it does not exist; a
    /// rejection with `code` when it exists but cannot be used: a link leading out, not a
    /// regular file, unreadable, or over `limit` bytes.
    ///
    /// The name is first resolved to an `O_PATH` descriptor, which opens nothing (a device's
    /// driver, a FIFO's writer, a socket never see it), and only once that is known to be a
    /// regular file is that very inode opened for reading, through `/proc/self/fd`.
    public func read(_ name: String, limit: Int, code: RejectReason.Code) throws(RejectReason) -> [UInt8]? {
        let shown = display(name)
        let pathFD: Int32
        do { pathFD = try open(name, RC_O_PATH) } catch {
            if error == .noSuchFileOrDirectory || error == .notDirectory {
                seen.withLock { $0[name] = .some(nil) }
                return nil
            }
            throw problem(error, shown: shown, code: code)
        }
        defer { Syscalls.close(pathFD) }
        let st: stat
        do { st = try Syscalls.fstat(pathFD) } catch { throw RejectReason(code, "cannot read \(shown): \(error)") }
        seen.withLock { $0[name] = FileIdentity(st) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw RejectReason(code, "\(shown) is not a regular file") }
        guard st.st_size <= limit else {
            throw RejectReason(code, "\(shown) is \(st.st_size) bytes, over the limit of \(limit / 1024) KiB")
        }
        let fd: Int32
        do { fd = try Syscalls.reopen(pathFD, O_RDONLY | O_NONBLOCK | O_NOCTTY) } catch { throw problem(error, shown: shown, code: code) }
        defer { Syscalls.close(fd) }
        do { return try Syscalls.read(fd, limit: limit) } catch { throw RejectReason(code, "cannot read \(shown): \(error)") }
    }

    /// Whether `name` exists (of any type); a rejection when it is a link leading out.
    public func contains(_ name: String, code: RejectReason.Code) throws(RejectReason) -> Bool {
        do {
            let fd = try open(name, RC_O_PATH)
            defer { Syscalls.close(fd) }
            let identity = (try? Syscalls.fstat(fd)).map(FileIdentity.init)
            seen.withLock { $0[name] = identity }
            return true
        } catch {
            let absent: Set<Errno> = [.noSuchFileOrDirectory, .notDirectory, .permissionDenied]
            if absent.contains(error) {
                seen.withLock { $0[name] = .some(nil) }
                return false
            }
            throw problem(error, shown: display(name), code: code)
        }
    }

    /// `name` as messages show it: the directory's path joined with the relative name.
    public func display(_ name: String) -> String {
        (shownPath.hasSuffix("/") ? shownPath + name : shownPath + "/" + name) + (image.map { " (in \($0))" } ?? "")
    }

    private func problem(_ error: Errno, shown: String, code: RejectReason.Code) -> RejectReason {
        switch error {
        case .improperLink, .tooManySymbolicLinkLevels:
            RejectReason(code, "\(shown) is a symbolic link that leads out of \(resolution == .beneath ? "the app directory" : "the image") (or loops); it is not read")
        case .permissionDenied:
            RejectReason(code, "\(shown) cannot be read by the app's user: \(error)")
        default:
            RejectReason(code, "cannot read \(shown): \(error)")
        }
    }

    private func open(_ name: String, _ flags: Int32) throws(Errno) -> Int32 {
        let relative = prefix.isEmpty ? name : prefix + "/" + name
        if useOpenat2 {
            let resolve = UInt64(resolution == .beneath ? RC_RESOLVE_BENEATH : RC_RESOLVE_IN_ROOT) | UInt64(RC_RESOLVE_NO_MAGICLINKS)
            do throws(Errno) {
                return try Syscalls.openat2(rootFD, relative, flags, resolve: resolve)
            } catch .noFunction {
                // Linux before 5.6: walk it by hand below.
            }
        }
        return try BeneathWalk(root: rootFD, inRoot: resolution == .inRoot).open(relative, flags)
    }
}

/// `openat2`'s resolution rules done by hand, one component at a time, each opened with
/// `O_NOFOLLOW` relative to the last: a symlink is read with `readlinkat` and its target walked
/// in its place (an absolute target restarts at the root for `inRoot`, and fails with EXDEV
/// beneath); `..` never climbs above the root (EXDEV beneath, stays at the root in it); more
/// than 40 links is ELOOP.
struct BeneathWalk {
    let root: Int32
    let inRoot: Bool
    static let maximumLinks = 40

    func open(_ path: String, _ flags: Int32) throws(Errno) -> Int32 {
        var pending = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if path.hasPrefix("/") && !inRoot { throw .improperLink }
        var stack: [Int32] = []  // descriptors of the directories below the root, innermost last
        defer { stack.forEach(Syscalls.close) }
        var links = 0
        while !pending.isEmpty {
            let component = pending.removeFirst()
            let here = stack.last ?? root
            if component == "." { continue }
            if component == ".." {
                if let top = stack.popLast() { Syscalls.close(top) } else if !inRoot { throw .improperLink }
                continue
            }
            let st = try Syscalls.statAt(here, component)
            if st.st_mode & S_IFMT == S_IFLNK {
                links += 1
                guard links <= Self.maximumLinks else { throw .tooManySymbolicLinkLevels }
                let target = try readLink(here, component)
                if target.hasPrefix("/") {
                    guard inRoot else { throw .improperLink }
                    stack.forEach(Syscalls.close)
                    stack = []
                }
                pending = target.split(separator: "/", omittingEmptySubsequences: true).map(String.init) + pending
                if target.isEmpty { throw .noSuchFileOrDirectory }
                continue
            }
            if pending.isEmpty {
                return try Syscalls.openat(here, component, flags | O_NOFOLLOW)
            }
            guard st.st_mode & S_IFMT == S_IFDIR else { throw .notDirectory }
            stack.append(try Syscalls.openat(here, component, RC_O_PATH | O_DIRECTORY | O_NOFOLLOW))
        }
        // The path named the root or a directory reached by `..`.
        return try Syscalls.openat(stack.last ?? root, ".", flags)
    }

    private func readLink(_ dirfd: Int32, _ name: String) throws(Errno) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = try Syscalls.retrying { readlinkat(dirfd, name, &buffer, buffer.count - 1) }
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
