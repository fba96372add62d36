import Glibc

/// The system's users and groups, looked up with the reentrant calls (`getpwnam_r` and
/// friends): `getpwnam` returns one buffer shared by every thread of the process, so a lookup
/// on another thread in between could hand one user's ids to another's task.
public enum UserDatabase {
    public struct User: Sendable, Equatable {
        public var name: String
        public var uid: uid_t
        public var gid: gid_t
        public var home: String
    }

    public static func user(named name: String) -> User? {
        lookup { pw, buffer, result in getpwnam_r(name, &pw, &buffer, buffer.count, &result) }
    }

    public static func user(id uid: uid_t) -> User? {
        lookup { pw, buffer, result in getpwuid_r(uid, &pw, &buffer, buffer.count, &result) }
    }

    public static func groupID(named name: String) -> gid_t? {
        var size = 1024
        while size <= 1 << 20 {
            var gr = group()
            var result: UnsafeMutablePointer<group>?
            var buffer = [CChar](repeating: 0, count: size)
            let rc = getgrnam_r(name, &gr, &buffer, buffer.count, &result)
            if rc == ERANGE { size *= 4; continue }
            return rc == 0 && result != nil ? gr.gr_gid : nil
        }
        return nil
    }

    private static func lookup(_ call: (inout passwd, inout [CChar], inout UnsafeMutablePointer<passwd>?) -> Int32) -> User? {
        var size = 1024
        while size <= 1 << 20 {
            var pw = passwd()
            var result: UnsafeMutablePointer<passwd>?
            var buffer = [CChar](repeating: 0, count: size)
            let rc = call(&pw, &buffer, &result)
            if rc == ERANGE { size *= 4; continue }
            guard rc == 0, result != nil else { return nil }
            return User(name: pw.pw_name.map { String(cString: $0) } ?? "", uid: pw.pw_uid, gid: pw.pw_gid,
                        home: pw.pw_dir.map { String(cString: $0) } ?? "/")
        }
        return nil
    }
}
