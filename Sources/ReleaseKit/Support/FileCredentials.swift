import CLinuxSyscalls
import Glibc

/// The user file access is checked against while intake reads an app's files, so that an app
/// can never make a root daemon read what the app's own tasks could not.
///
/// Linux keeps credentials per thread; glibc's `setgroups`/`setuid` change every thread of the
/// process, but `setfsuid`, `setfsgid` and the raw `setgroups` system call change only the
/// calling one. `perform` applies the user's file-system ids and groups to the calling thread
/// for the duration of a synchronous body (nothing else can run on that thread meanwhile: the
/// body cannot suspend) and restores the daemon's own before it returns. With fsuid not 0 the
/// kernel also clears the thread's file capabilities (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
/// CAP_FOWNER…) and gives them back when fsuid is 0 again, so the body is checked exactly as
/// the user would be.
public struct FileCredentials: Sendable, Equatable {
    public var uid: uid_t
    public var gid: gid_t
    /// Supplementary groups (the primary group may be among them).
    public var groups: [gid_t]

    public init(uid: uid_t, gid: gid_t, groups: [gid_t]) {
        self.uid = uid
        self.gid = gid
        self.groups = groups
    }

    /// Runs `body` with file access checked as this user. Returns nil, without running the
    /// body, when the thread's ids could not be switched (the daemon lacks CAP_SETUID or
    /// CAP_SETGID): nothing is ever read with more privilege than asked.
    public func perform<T>(_ body: () -> T) -> T? {
        let ownUID = geteuid()
        let ownGID = getegid()
        if uid == ownUID && gid == ownGID { return body() }
        var saved = [gid_t](repeating: 0, count: Int(max(getgroups(0, nil), 0)))
        let count = saved.withUnsafeMutableBufferPointer { getgroups(Int32($0.count), $0.baseAddress) }
        guard count >= 0 else { return nil }
        saved = Array(saved.prefix(Int(count)))

        guard groups.withUnsafeBufferPointer({ rc_thread_setgroups($0.count, $0.baseAddress) }) == 0 else { return nil }
        _ = rc_thread_setfsgid(gid)
        _ = rc_thread_setfsuid(uid)
        defer {
            _ = rc_thread_setfsuid(ownUID)
            _ = rc_thread_setfsgid(ownGID)
            let restored = saved.withUnsafeBufferPointer { rc_thread_setgroups($0.count, $0.baseAddress) } == 0
            // Going back to the daemon's own ids needs no privilege the switch did not: if it
            // ever failed, this thread must not go on with ids that are not its own.
            precondition(restored && Self.currentFSUID() == ownUID && Self.currentFSGID() == ownGID,
                         "cannot restore the daemon's file credentials")
        }
        // setfsuid reports no error: check that it took.
        guard Self.currentFSUID() == uid, Self.currentFSGID() == gid else { return nil }
        return body()
    }

    /// The calling thread's file-system uid (setfsuid with an invalid id changes nothing and
    /// returns the current one).
    static func currentFSUID() -> uid_t { uid_t(bitPattern: rc_thread_setfsuid(uid_t.max)) }
    static func currentFSGID() -> gid_t { gid_t(bitPattern: rc_thread_setfsgid(gid_t.max)) }
}
