import Glibc
import ReleaseKit

/// Who an app's tasks run as, when the daemon (as root) switches to an app's user.
struct TaskIdentity: Sendable, Equatable {
    var user: String
    var uid: uid_t
    var gid: gid_t
    var groups: [gid_t]
    var home: String

    /// The ids the app's files are read with at intake.
    var credentials: FileCredentials { FileCredentials(uid: uid, gid: gid, groups: groups) }

    /// The user an app's tasks run as: `[apps.<name>] user`, else `default-user`; nil for the
    /// daemon's own user. A daemon running as root never runs tasks as root unless
    /// `allow-root-tasks` says so: a request of an app with no user is rejected.
    static func resolve(app: String, config: DaemonConfig) throws(RejectReason) -> TaskIdentity? {
        guard let user = config.apps[app]?.user ?? config.defaultUser else {
            if geteuid() == 0 && !config.allowRootTasks {
                throw RejectReason(.user, "released runs as root and app \(app) has no user to run its tasks as: set [apps.\(app)] user (or default-user) in released.toml; tasks never run as root unless allow-root-tasks is set")
            }
            return nil
        }
        guard geteuid() == 0 else {
            throw RejectReason(.user, "[apps.\(app)] user = \(user) needs the daemon to run as root")
        }
        guard let pw = UserDatabase.user(named: user) else { throw RejectReason(.user, "[apps.\(app)] user \(user) does not exist") }
        let uid = pw.uid
        let gid = pw.gid
        guard uid != 0 else { throw RejectReason(.user, "[apps.\(app)] user \(user) is root; tasks never run as root this way") }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(user, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(user, gid, &groups, &count)
        }
        return TaskIdentity(user: user, uid: uid, gid: gid, groups: Array(groups.prefix(Int(max(0, count)))),
                            home: pw.home)
    }

    /// The home folder of a user id, for tasks that run as the daemon's user.
    static func home(of uid: uid_t) -> String {
        UserDatabase.user(id: uid)?.home ?? "/"
    }
}
