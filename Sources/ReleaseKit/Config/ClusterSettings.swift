import Glibc
import ReleaseSupport
import ReleaseTOML
import SystemPackage

/// released.toml's `[cluster]`: the PostgreSQL database every node of a cluster coordinates
/// through, and this node's name and lease. The password is read from `password-file`, never
/// from the URL, and is never logged.
public struct ClusterSettings: Sendable, Equatable {
    /// `postgres://USER@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require]`.
    public var url: String
    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    public var tls: TLSMode
    public var passwordFile: String?
    /// This daemon's name in the cluster: unique per node (default: the host name).
    public var node: String
    /// How long a running release's lease lasts; renewed every third of it.
    public var lease: Duration
    /// How long the postdeploy of a deploy key waits, from its first submission, for every
    /// node that took part in the predeploy to submit theirs (the traffic barrier); a node
    /// still missing then fails it everywhere. Set by the node that submits first.
    public var barrierTimeout = ClusterSettings.defaultBarrierTimeout

    public static let defaultBarrierTimeout = Duration.seconds(600)
    public static let maximumBarrierTimeout = Duration.seconds(86_400)

    public enum TLSMode: String, Sendable, Equatable {
        case disable, prefer, require
    }

    /// The shortest lease: a third of it must leave room for a round trip and the kill grace.
    public static let minimumLease = Duration.seconds(3)

    /// How long before its lease runs out a release's tasks must have ended (room for the kill
    /// to land and for clocks' rates to differ a little), and the time allowed for one round
    /// trip to the database: a sixth of the lease, at most 1 s.
    public var leaseMargin: Duration { min(.seconds(1), lease / 6) }

    /// Why this lease cannot work with `killGrace`, or nil. A running release must be able to
    /// miss one renewal (they come every third of the lease) and still end its tasks —
    /// SIGTERM, the kill grace, SIGKILL — before the lease runs out, with `leaseMargin` to
    /// spare and a round trip: two thirds of the lease must hold the kill grace and twice the
    /// margin. Said with the values and what would work.
    public func problem(killGrace: Duration) -> String? {
        guard lease * 2 / 3 < killGrace + leaseMargin * 2 else { return nil }
        // The least lease for this grace: 3 × grace while a sixth of it is under 1 s, else 1.5 × (grace + 2 s).
        let least = max(Self.minimumLease, killGrace < .seconds(2) ? killGrace * 3 : (killGrace + .seconds(2)) * 3 / 2)
        let most = lease * 2 / 3 - leaseMargin * 2
        let grace = most > .zero ? "kill-grace to at most \(DurationParser.format(most))" : "a longer lease"
        return "[cluster] lease = \"\(DurationParser.format(lease))\" cannot hold with kill-grace = \"\(DurationParser.format(killGrace))\": a running release must be able to miss a renewal (one every \(DurationParser.format(lease / 3))) and still end its tasks (SIGTERM, the kill grace, SIGKILL) before its lease runs out, with \(DurationParser.format(leaseMargin)) to spare and \(DurationParser.format(leaseMargin)) for a round trip; set lease to at least \(DurationParser.format(least)), or \(grace)"
    }

    /// Reads `[cluster]`; `fail` makes the error.
    static func parse(_ table: TOML.Table, fail: (String) -> DaemonConfig.ConfigError) throws(DaemonConfig.ConfigError) -> ClusterSettings {
        var url: String?, passwordFile: String?, node: String?, lease = Duration.seconds(30), barrier = defaultBarrierTimeout
        for key in table.keys.sorted() {
            let v = table[key]!
            switch key {
            case "url":
                guard let s = v.string else { throw fail("[cluster] url must be a string") }
                url = s
            case "password-file":
                guard let s = v.string, s.hasPrefix("/") else { throw fail("[cluster] password-file must be an absolute path") }
                passwordFile = s
            case "node":
                guard let s = v.string, Syntax.isValidAppName(s) || s.utf8.allSatisfy({ Self.nodeByte($0) }), !s.isEmpty, s.utf8.count <= 63 else {
                    throw fail("[cluster] node must be 1 to 63 letters, digits, '.', '-' or '_'")
                }
                node = s
            case "lease":
                if let n = v.integer, n > 0 { lease = .seconds(n) } else {
                    guard let s = v.string else { throw fail("[cluster] lease must be a duration such as \"30s\"") }
                    do throws(DurationParser.ParseError) { lease = try DurationParser.parse(s) } catch { throw fail("[cluster] lease: \(error)") }
                }
                guard lease >= minimumLease else { throw fail("[cluster] lease must be at least \(DurationParser.format(minimumLease))") }
            case "barrier-timeout":
                guard let text = v.string else { throw fail("[cluster] barrier-timeout must be a duration such as \"10m\", not \(v.kind)") }
                do throws(DurationParser.ParseError) { barrier = try DurationParser.parse(text) } catch { throw fail("[cluster] barrier-timeout: \(error)") }
                guard barrier >= .seconds(1), barrier <= maximumBarrierTimeout else {
                    throw fail("[cluster] barrier-timeout must be from 1s to \(DurationParser.format(maximumBarrierTimeout)), not \(DurationParser.format(barrier))")
                }
            default:
                throw fail("unknown key \(Masking.preview(key)) in [cluster] (known: url, password-file, node, lease, barrier-timeout)")
            }
        }
        guard let url else { throw fail("[cluster] needs url (postgres://USER@HOST:PORT/DATABASE)") }
        var settings = try parseURL(url, fail: fail)
        settings.passwordFile = passwordFile
        settings.node = node ?? hostName()
        settings.lease = lease
        settings.barrierTimeout = barrier
        return settings
    }

    /// `postgres://USER@HOST[:PORT]/DATABASE[?sslmode=…]`: a password in it is refused.
    static func parseURL(_ url: String, fail: (String) -> DaemonConfig.ConfigError) throws(DaemonConfig.ConfigError) -> ClusterSettings {
        let shown = Masking.preview(url.split(separator: "@", maxSplits: 1).last.map(String.init) ?? "")
        var rest: Substring
        if url.hasPrefix("postgres://") { rest = url.dropFirst("postgres://".count) }
        else if url.hasPrefix("postgresql://") { rest = url.dropFirst("postgresql://".count) }
        else { throw fail("[cluster] url must start with postgres://") }
        var query = ""
        if let q = rest.firstIndex(of: "?") { query = String(rest[rest.index(after: q)...]); rest = rest[..<q] }
        guard let slash = rest.firstIndex(of: "/") else { throw fail("[cluster] url …@\(shown) names no database (postgres://USER@HOST:PORT/DATABASE)") }
        let database = String(rest[rest.index(after: slash)...])
        var authority = rest[..<slash]
        guard let at = authority.lastIndex(of: "@") else { throw fail("[cluster] url names no user (postgres://USER@HOST:PORT/DATABASE)") }
        let userPart = authority[..<at]
        guard !userPart.contains(":") else {
            throw fail("[cluster] url holds a password: put it in password-file (a file only the daemon reads), never in the URL")
        }
        let user = String(userPart)
        authority = authority[authority.index(after: at)...]
        var host = String(authority), port = 5432
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else {
                throw fail("[cluster] url …@\(shown): the port must be a number from 1 to 65535")
            }
            port = p
            host = String(authority[..<colon])
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !user.isEmpty, !host.isEmpty, !database.isEmpty, !Syntax.hasControlCharacters(url) else {
            throw fail("[cluster] url …@\(shown) must be postgres://USER@HOST[:PORT]/DATABASE")
        }
        var tls = TLSMode.prefer
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, kv[0] == "sslmode" else { throw fail("[cluster] url: unknown parameter \(Masking.preview(String(pair))) (known: sslmode)") }
            guard let mode = TLSMode(rawValue: kv[1]) else { throw fail("[cluster] url: sslmode must be disable, prefer or require") }
            tls = mode
        }
        return ClusterSettings(url: url, host: host, port: port, user: user, database: database, tls: tls, passwordFile: nil,
                               node: "", lease: .seconds(30))
    }

    /// Reads the password (its first line), or nil without a password-file.
    public func readPassword() throws(DaemonConfig.ConfigError) -> String? {
        guard let passwordFile else { return nil }
        let bytes: [UInt8]
        do throws(Errno) { bytes = try SmallFile.read(FilePath(passwordFile), limit: 4096) } catch {
            throw DaemonConfig.ConfigError(path: passwordFile, problem: "cannot read the cluster password: \(error)")
        }
        guard !bytes.isEmpty else { throw DaemonConfig.ConfigError(path: passwordFile, problem: "the cluster password file is empty") }
        let text = String(decoding: bytes, as: UTF8.self)
        return String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
    }

    private static func nodeByte(_ b: UInt8) -> Bool {
        (b >= 97 && b <= 122) || (b >= 65 && b <= 90) || (b >= 48 && b <= 57) || b == UInt8(ascii: ".") || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
