import FoundationEssentials
import ReleaseSupport
/// Masks secret values of a request's env wherever they could show: task output, records,
/// `--json`, the journal, the notify payload.
///
/// Secrets are the values of variables named `*_PASSWORD`, `*_SECRET`, `*_TOKEN`, `*_KEY`,
/// `*_KEY_BASE`, `DATABASE_URL`, and of any variable whose value is a URL with credentials
/// (whose password is also masked on its own, and percent-decoded). Each occurrence is
/// replaced by `***`. Values shorter than three bytes are not masked (they would blank out
/// ordinary output and protect nothing). A secret of several lines (a PEM key) is also
/// masked line by line: each of its lines, trimmed of blanks, is a secret of its own, so that
/// output masked a line at a time (`MaskedLineSplitter`) masks it too.
///
/// Every byte that is part of an occurrence of any secret is masked; occurrences that
/// overlap, or one inside another, become one `***` (so a secret containing another is masked
/// whole, and never left partly visible because a shorter one matched inside it). Masked
/// text is not masked again: a secret that itself contains `***` could be made up by masking
/// (`a***b` from `a`, another secret, `b`).
///
/// Masking is linear in the text whatever the number of secrets (one Aho–Corasick automaton
/// over all of them, built in time linear in their total size), and the automaton takes about
/// 17 bytes a byte of secret. Over `maximumSecretBytes` of secrets, which no valid request
/// can hold, no automaton is built and everything is masked: fail closed, never trap.
public struct Masking: Sendable {
    /// What stands for each run of secrets in masked text.
    public static let mask = "***"
    /// Secrets shorter than this many bytes are not masked.
    public static let minimumLength = 3
    /// The most bytes of secrets (all secrets together, lines of multi-line secrets and
    /// decoded passwords included) over which masking still masks only the secrets. A request
    /// file is at most 1 MiB, which gives at most about 6 MiB of secrets.
    public static let maximumSecretBytes = 16 * 1024 * 1024

    /// The secrets to look for, longest first.
    public let secrets: [[UInt8]]
    /// The automaton over `secrets`; nil when there are none, or too many to mask one by one.
    let automaton: MaskingAutomaton?
    /// Whether every non-empty text is masked whole (secrets over `maximumSecretBytes`).
    let masksEverything: Bool

    /// The masking of `env`'s secrets. Builds the automaton over them: time and memory linear
    /// in their total size.
    public init(env: [String: String]) {
        self.init(secrets: Self.secretValues(in: env))
    }

    /// The masking of these secrets (those shorter than `minimumLength` are left out).
    init(secrets found: Set<[UInt8]>) {
        let secrets = found.filter { $0.count >= Self.minimumLength }
            .sorted { $0.count > $1.count }
        self.secrets = secrets
        let total = secrets.reduce(0) { $0 + $1.count }
        masksEverything = total > Self.maximumSecretBytes
        automaton = secrets.isEmpty || masksEverything ? nil : MaskingAutomaton(secrets: secrets)
    }

    /// `text` with `env`'s secrets masked, for a short text such as a message: only the
    /// secrets that occur in it make up the automaton, so a request full of long secrets
    /// costs a search of the text per secret, not an automaton over all of them.
    public static func apply(_ text: String, secretsOf env: [String: String]) -> String {
        let bytes = Array(text.utf8)
        let present = secretValues(in: env).filter { secret in
            secret.count <= bytes.count && bytes.indices.contains { bytes[$0...].starts(with: secret) }
        }
        return present.isEmpty ? text : Masking(secrets: present).apply(text)
    }

    /// The secret values of an env, as bytes: values of secret-named variables, URLs with
    /// credentials and their passwords (also percent-decoded), and each line of a secret of
    /// several lines, trimmed.
    static func secretValues(in env: [String: String]) -> Set<[UInt8]> {
        // Sets of bytes, not of Strings: two canonically equivalent Strings are equal but
        // their bytes need not be, and each must be masked.
        var found = Set<[UInt8]>()
        for (key, value) in env {
            if Self.isSecretName(key) { found.insert(Array(value.utf8)) }
            if let password = Self.urlPassword(value) {
                found.insert(Array(value.utf8))
                found.insert(Array(password.utf8))
                if let decoded = password.removingPercentEncodingLossless(), decoded != password { found.insert(Array(decoded.utf8)) }
            }
        }
        // Output is masked line by line: a secret of several lines is also masked line by
        // line. Split on the byte `\n`, so `\r\n` line ends count too.
        for value in found where value.contains(Self.newline) {
            for line in value.split(separator: Self.newline) {
                found.insert(Self.trimmingBlanks(line))
            }
        }
        return found
    }

    /// No secrets: masks nothing.
    public static let none = Masking(env: [:])

    /// Whether a variable of this name (any case) holds a secret: `DATABASE_URL`, `PASSWORD`,
    /// `SECRET`, `TOKEN`, `SECRET_KEY_BASE`, or a name ending in `_PASSWORD`, `_SECRET`,
    /// `_TOKEN`, `_KEY`, `_KEY_BASE`, `_PASS` or `_PASSWD`.
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

    static let newline = UInt8(ascii: "\n")

    /// A line of a secret without the blanks around it (space, tab, `\r`).
    private static func trimmingBlanks(_ line: ArraySlice<UInt8>) -> [UInt8] {
        func isBlank(_ b: UInt8) -> Bool { b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\r") || b == newline }
        var line = line
        while let f = line.first, isBlank(f) { line.removeFirst() }
        while let l = line.last, isBlank(l) { line.removeLast() }
        return Array(line)
    }

    /// Whether there is nothing to mask: text passes through unchanged.
    public var isEmpty: Bool { automaton == nil && !masksEverything }

    /// The text with every secret replaced. Linear in the text.
    public func apply(_ text: String) -> String {
        if isEmpty { return text }
        var bytes = Array(text.utf8)
        guard apply(to: &bytes) else { return text }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Masks in place; returns whether anything was masked. Linear in the text.
    @discardableResult
    public func apply(to bytes: inout [UInt8]) -> Bool {
        if masksEverything {
            guard !bytes.isEmpty else { return false }
            bytes = Array(Self.mask.utf8)
            return true
        }
        guard let automaton else { return false }
        var scanner = MaskingScanner(automaton: automaton)
        var output = MaskedBytes()
        output.bytes.reserveCapacity(bytes.count)
        bytes.withUnsafeBytes { scanner.scan($0, into: &output) }
        scanner.finish(into: &output)
        guard output.masked else { return false }
        bytes = output.bytes
        return true
    }

    /// An env with secret values replaced, for showing a request.
    public func maskedEnv(_ env: [String: String]) -> [String: String] {
        env.mapValues { apply($0) }
    }

    /// A short, quoted, control-character-free rendering of an untrusted string for messages
    /// (see `Quoting`).
    public static func preview(_ s: String, limit: Int = 60) -> String {
        Quoting.quoted(s, limit: limit)
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

/// Masked text gathered in one buffer.
private struct MaskedBytes: MaskedOutput {
    var bytes: [UInt8] = []
    /// Whether a mask was given.
    var masked = false

    mutating func append(plain text: UnsafeRawBufferPointer) { bytes.append(contentsOf: text) }

    mutating func appendMask() {
        bytes.append(contentsOf: Masking.mask.utf8)
        masked = true
    }
}
