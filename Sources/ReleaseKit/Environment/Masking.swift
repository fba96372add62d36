import FoundationEssentials
/// Masks secret values of a request's env wherever they could show: task output, records,
/// `--json`, the journal, the notify payload.
///
/// Secret are the values of variables named `*_PASSWORD`, `*_SECRET`, `*_TOKEN`, `*_KEY`,
/// `*_KEY_BASE`, `DATABASE_URL`, and of any variable whose value is a URL with credentials
/// (whose password is also masked on its own). Each is replaced by `***`. Values shorter than
/// three characters are not masked (they would blank out ordinary output and protect nothing).
public struct Masking: Sendable {
    public static let mask = "***"
    public static let minimumLength = 3

    /// The secrets to look for, longest first so that a secret containing another is masked whole.
    public let secrets: [[UInt8]]

    public init(env: [String: String]) {
        var found = Set<String>()
        for (key, value) in env {
            if Self.isSecretName(key) { found.insert(value) }
            if let password = Self.urlPassword(value) {
                found.insert(value)
                found.insert(password)
                if let decoded = password.removingPercentEncodingLossless(), decoded != password { found.insert(decoded) }
            }
        }
        // Output is masked line by line: a secret of several lines (a PEM key) is also masked
        // line by line.
        for value in found where value.contains("\n") {
            for line in value.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
                found.insert(String(line).trimmingBlanks())
            }
        }
        secrets = found.filter { $0.utf8.count >= Self.minimumLength }
            .map { Array($0.utf8) }
            .sorted { $0.count > $1.count }
    }

    /// No secrets: masks nothing.
    public static let none = Masking(env: [:])

    public static func isSecretName(_ name: String) -> Bool {
        let n = name.uppercased()
        if n == "DATABASE_URL" { return true }
        for suffix in ["_PASSWORD", "_SECRET", "_TOKEN", "_KEY", "_KEY_BASE", "_PASS", "_PASSWD"] where n.hasSuffix(suffix) {
            return true
        }
        return ["PASSWORD", "SECRET", "TOKEN", "SECRET_KEY_BASE"].contains(n)
    }

    /// The password of a URL of the form `scheme://user:password@host…`, or nil.
    static func urlPassword(_ value: String) -> String? {
        guard let schemeEnd = value.firstRange(of: "://") else { return nil }
        let rest = value[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        guard let at = authority.lastIndex(of: "@") else { return nil }
        let userinfo = authority[..<at]
        guard let colon = userinfo.firstIndex(of: ":") else { return userinfo.isEmpty ? nil : String(userinfo) }
        let password = userinfo[userinfo.index(after: colon)...]
        return password.isEmpty ? nil : String(password)
    }

    public var isEmpty: Bool { secrets.isEmpty }

    /// The text with every secret replaced.
    public func apply(_ text: String) -> String {
        if secrets.isEmpty { return text }
        var bytes = Array(text.utf8)
        guard apply(to: &bytes) else { return text }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Masks in place; returns whether anything was masked.
    @discardableResult
    public func apply(to bytes: inout [UInt8]) -> Bool {
        var changed = false
        for secret in secrets {
            guard let first = secret.first, bytes.count >= secret.count else { continue }
            var out: [UInt8]?
            var i = 0
            var copiedUpTo = 0
            let last = bytes.count - secret.count
            while i <= last {
                if bytes[i] == first && bytes[i..<(i + secret.count)].elementsEqual(secret) {
                    if out == nil { out = []; out!.reserveCapacity(bytes.count) }
                    out!.append(contentsOf: bytes[copiedUpTo..<i])
                    out!.append(contentsOf: Self.mask.utf8)
                    i += secret.count
                    copiedUpTo = i
                } else {
                    i += 1
                }
            }
            if var result = out {
                result.append(contentsOf: bytes[copiedUpTo...])
                bytes = result
                changed = true
            }
        }
        return changed
    }

    /// An env with secret values replaced, for showing a request.
    public func maskedEnv(_ env: [String: String]) -> [String: String] {
        env.mapValues { apply($0) }
    }

    /// A short, quoted, control-character-free rendering of an untrusted string for messages.
    public static func preview(_ s: String, limit: Int = 60) -> String {
        var out = ""
        for scalar in s.unicodeScalars {
            if out.unicodeScalars.count >= limit { out += "…"; break }
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.properties.generalCategory == .control {
                    out += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return "\"\(out)\""
    }
}

extension String {
    /// Percent-decoding that gives nil for malformed escapes or invalid UTF-8.
    func removingPercentEncodingLossless() -> String? {
        var bytes: [UInt8] = []
        var it = Array(utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%") {
                guard it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) else { return nil }
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
