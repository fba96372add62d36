import ReleaseKit

/// A webhook URL of `RELEASE_NOTIFY_URL`, checked in full before anything connects to it.
///
/// The URL comes from a request's env, so from whoever may submit: it is parsed here by the
/// rules of RFC 3986 that an HTTP client relies on, and anything outside them is refused with a
/// reason that quotes only scheme, host and port (a webhook path or its credentials are
/// often secrets). Only `http` and `https`; a host that is a registered name (ASCII letters,
/// digits, `-`, `.`, `_`, `~`), an IPv4 address or a bracketed IPv6 address;
/// a port, when given, from 1 to 65535; no spaces or control characters anywhere. A URL that
/// parses here never makes the HTTP client trap, whatever its bytes.
public struct WebhookURL: Sendable, Equatable {
    /// `http` or `https`, lower-case.
    public var scheme: String
    /// The host as written (without brackets for IPv6).
    public var host: String
    /// The port, or nil for the scheme's default.
    public var port: Int?
    /// The URL as given, for the HTTP client.
    public var text: String

    /// Why a URL was refused.
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        /// The URL as it may be shown (see `WebhookURL.redact`).
        public var shown: String
        public var message: String
        public var description: String { "\(shown) \(message)" }
    }

    /// Parses and checks a URL.
    public static func parse(_ text: String) throws(Problem) -> WebhookURL {
        let shown = redact(text)
        func fail(_ message: String) -> Problem { Problem(shown: shown, message: message) }
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw fail("is empty") }
        if let bad = bytes.first(where: { $0 <= 0x20 || $0 >= 0x7F }) {
            throw fail(bad == 0x20 ? "contains a space" : bad < 0x20 || bad == 0x7F ? "contains a control character"
                       : "contains a non-ASCII character (write the host in punycode and percent-encode the rest)")
        }
        guard let schemeEnd = text.firstRange(of: "://") else { throw fail("is not an http:// or https:// URL") }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { throw fail("is not an http:// or https:// URL") }
        let rest = text[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        var hostPort = authority
        if let at = authority.lastIndex(of: "@") {
            let userinfo = authority[..<at]
            guard userinfo.allSatisfy({ isUnreserved($0) || isSubDelimiter($0) || $0 == ":" || $0 == "%" }) else {
                throw fail("has characters in its user part that a URL cannot hold")
            }
            hostPort = authority[authority.index(after: at)...]
        }
        let host: Substring
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw fail("has an IPv6 address without its closing ]") }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }), host.contains(":") else {
                throw fail("has a malformed IPv6 address")
            }
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw fail("has characters after its IPv6 address") }
                portText = after.dropFirst()
            }
        } else {
            if let colon = hostPort.lastIndex(of: ":") {
                host = hostPort[..<colon]
                portText = hostPort[hostPort.index(after: colon)...]
            } else {
                host = hostPort
            }
            guard !host.isEmpty else { throw fail("has no host") }
            guard host.allSatisfy(isUnreserved) else {
                throw fail("has a host with characters a host name cannot hold")
            }
            guard !host.hasPrefix("."), !host.contains(".."), !host.hasPrefix("-") else { throw fail("has a malformed host name") }
        }
        var port: Int?
        if let portText {
            guard !portText.isEmpty else { throw fail("has an empty port") }
            guard portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(portText), (1...65535).contains(n) else {
                throw fail("has the port \(Masking.preview(String(portText.prefix(12)))), not a number from 1 to 65535")
            }
            port = n
        }
        let tail = rest[authority.endIndex...]
        guard tail.allSatisfy({ isUnreserved($0) || isSubDelimiter($0) || "%:@/?#[]".contains($0) }) else {
            throw fail("has characters in its path or query that a URL cannot hold (percent-encode them)")
        }
        return WebhookURL(scheme: scheme, host: String(host), port: port, text: text)
    }

    /// A URL as it may be shown: scheme, host and port only (webhook paths are often secrets),
    /// and `/…` when something followed.
    public static func redact(_ url: String) -> String {
        guard let schemeEnd = url.firstRange(of: "://") else { return "<not a URL>" }
        let scheme = url[..<schemeEnd.upperBound]
        let rest = url[schemeEnd.upperBound...]
        var host = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = host.lastIndex(of: "@") { host = host[host.index(after: at)...] }
        let hasPath = rest.count > host.count
        let clean = { (s: Substring, limit: Int) -> String in
            String(s.unicodeScalars.prefix(limit).map { $0.value < 0x21 || $0.value == 0x7F ? "?" : Character($0) })
        }
        return clean(scheme, 16) + clean(host, 80) + (hasPath ? "/…" : "")
    }

    static func isUnreserved(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || c == "-" || c == "." || c == "_" || c == "~")
    }

    static func isSubDelimiter(_ c: Character) -> Bool { "!$&'()*+,;=".contains(c) }
}
