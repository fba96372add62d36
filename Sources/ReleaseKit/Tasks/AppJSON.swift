import FoundationEssentials
import ReleaseSupport

/// The scripts of an app's `app.json` that a release runs, as Dokku and Heroku run them:
///
/// ```json
/// {"scripts": {"dokku": {"predeploy": "…", "postdeploy": "…"}, "postdeploy": "…"}}
/// ```
///
/// - `scripts.dokku.predeploy`: before traffic moves, every deploy (Dokku);
/// - `scripts.dokku.postdeploy`: after traffic moved, every deploy (Dokku);
/// - `scripts.postdeploy`: after traffic moved, on the app's first successful deploy only
///   (Heroku; a string, or an object whose `command` is one).
///
/// Every other key (`name`, `env`, `formation`, `cron`, `addons`, `buildpacks`,
/// `healthchecks`…) belongs to other tools and is ignored. The file is the app author's, so it
/// is read as hostile: at most 64 KiB (the caller's limit), nested at most `maximumDepth`
/// deep (checked before it is parsed), and a script of the wrong type, with a NUL, or a file
/// that is not JSON rejects the release naming the file, the place and the problem.
public struct AppJSON: Sendable, Equatable {
    public static let fileName = "app.json"
    /// The deepest nesting of arrays and objects read.
    public static let maximumDepth = 32

    public var dokkuPredeploy: String?
    public var dokkuPostdeploy: String?
    /// Heroku's `scripts.postdeploy`.
    public var firstDeploy: String?

    public init(dokkuPredeploy: String? = nil, dokkuPostdeploy: String? = nil, firstDeploy: String? = nil) {
        self.dokkuPredeploy = dokkuPredeploy
        self.dokkuPostdeploy = dokkuPostdeploy
        self.firstDeploy = firstDeploy
    }

    /// Parses app.json's bytes; `path` names the file in messages.
    public static func parse(_ bytes: [UInt8], path: String) throws(RejectReason) -> AppJSON {
        func fail(_ problem: String) -> RejectReason { RejectReason(.appJSON, "\(path): \(problem)") }
        guard var text = String(validating: bytes, as: UTF8.self) else { throw fail("not valid UTF-8") }
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }  // a byte order mark, as editors write one
        if let line = tooDeep(bytes) {
            throw fail("nested more than \(maximumDepth) levels deep (line \(line)); app.json is a flat object of settings")
        }
        // Checked by the strict reader first (it names the line and column; it refuses what
        // lenient parsers take differently: a key twice, a trailing comma, a lone surrogate).
        if let (line, column, problem) = JSONSyntax.firstError(Array(text.utf8)) {
            throw fail("not valid JSON at line \(line), column \(column): \(problem)")
        }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        } catch {
            throw fail("not valid JSON: \(JSONValue.describe(error))")
        }
        guard case .object(let root) = value else { throw fail("must be a JSON object, not \(value.kind)") }
        var result = AppJSON()
        guard let scriptsValue = root["scripts"] else { return result }
        guard case .object(let scripts) = scriptsValue else {
            if case .null = scriptsValue { return result }
            throw fail("\"scripts\" must be an object, not \(scriptsValue.kind)")
        }
        func script(_ value: JSONValue?, at place: String) throws(RejectReason) -> String? {
            switch value {
            case nil, .null?: return nil
            case .string(let s)?:
                if s.utf8.contains(0) { throw fail("\(place) contains a NUL character") }
                return s.trimmingBlanks().isEmpty ? nil : s
            case let other?: throw fail("\(place) must be a string (run by /bin/sh -c), not \(other.kind)")
            }
        }
        switch scripts["dokku"] {
        case nil, .null?: break
        case .object(let dokku)?:
            result.dokkuPredeploy = try script(dokku["predeploy"], at: "scripts.dokku.predeploy")
            result.dokkuPostdeploy = try script(dokku["postdeploy"], at: "scripts.dokku.postdeploy")
        case let other?: throw fail("scripts.dokku must be an object, not \(other.kind)")
        }
        switch scripts["postdeploy"] {
        case .object(let o)?:
            // Heroku's long form: {"command": "…", "size": "…"} (the size is Heroku's alone).
            guard o["command"] != nil else { throw fail("scripts.postdeploy has no \"command\"") }
            result.firstDeploy = try script(o["command"], at: "scripts.postdeploy.command")
        case let other:
            result.firstDeploy = try script(other, at: "scripts.postdeploy")
        }
        return result
    }

    /// The line where nesting first goes past `maximumDepth`, or nil. Strings are skipped (a
    /// bracket inside one nests nothing); the JSON itself is checked by the parser after.
    static func tooDeep(_ bytes: [UInt8]) -> Int? {
        var depth = 0, line = 1
        var inString = false, escaped = false
        for b in bytes {
            if b == UInt8(ascii: "\n") { line += 1 }
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > maximumDepth { return line }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return nil
    }
}

/// Where a text first fails to be JSON (RFC 8259), for a message that names the place: the
/// line and column (1-based, in bytes) and what was expected there. Nil when it is JSON.
enum JSONSyntax {
    static func firstError(_ bytes: [UInt8]) -> (line: Int, column: Int, problem: String)? {
        var i = 0
        struct Failure: Error { var at: Int; var problem: String }
        func at(_ offset: Int, _ problem: String) -> Failure { Failure(at: offset, problem: problem) }
        func skipBlanks() { while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 } }
        func shown(_ b: UInt8) -> String { b >= 0x21 && b < 0x7F ? "'\(Character(Unicode.Scalar(b)))'" : String(format2: b) }
        func literal(_ word: String) throws(Failure) {
            for b in word.utf8 {
                guard i < bytes.count, bytes[i] == b else { throw at(i, "expected \(word)") }
                i += 1
            }
        }
        /// Reads a string; returns its content (escapes decoded) as UTF-8.
        @discardableResult
        func string() throws(Failure) -> [UInt8] {
            var content: [UInt8] = []
            i += 1  // the opening quote
            func hex4(_ at: Int) -> UInt32? {
                guard at + 4 <= bytes.count else { return nil }
                var v: UInt32 = 0
                for b in bytes[at..<(at + 4)] {
                    let d: UInt8
                    switch b {
                    case 48...57: d = b - 48
                    case 65...70: d = b - 55
                    case 97...102: d = b - 87
                    default: return nil
                    }
                    v = v << 4 | UInt32(d)
                }
                return v
            }
            while i < bytes.count {
                let b = bytes[i]
                if b == UInt8(ascii: "\"") { i += 1; return content }
                if b < 0x20 { throw at(i, "a control character inside a string (write it escaped)") }
                if b == UInt8(ascii: "\\") {
                    let escape = i
                    i += 1
                    guard i < bytes.count else { break }
                    switch bytes[i] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): content.append(bytes[i]); i += 1
                    case UInt8(ascii: "b"): content.append(0x08); i += 1
                    case UInt8(ascii: "f"): content.append(0x0C); i += 1
                    case UInt8(ascii: "n"): content.append(0x0A); i += 1
                    case UInt8(ascii: "r"): content.append(0x0D); i += 1
                    case UInt8(ascii: "t"): content.append(0x09); i += 1
                    case UInt8(ascii: "u"):
                        guard var v = hex4(i + 1) else { throw at(i, "\\u needs four hexadecimal digits") }
                        i += 5
                        if (0xD800...0xDBFF).contains(v) {
                            guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u"),
                                  let low = hex4(i + 2), (0xDC00...0xDFFF).contains(low) else {
                                throw at(escape, "a lone surrogate (\\u\(String(v, radix: 16, uppercase: true)) without its pair)")
                            }
                            v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                            i += 6
                        } else if (0xDC00...0xDFFF).contains(v) {
                            throw at(escape, "a lone surrogate (\\u\(String(v, radix: 16, uppercase: true)) without its pair)")
                        }
                        content.append(contentsOf: Array(String(Character(Unicode.Scalar(v)!)).utf8))
                    default: throw at(i, "an unknown escape \\\(shown(bytes[i]))")
                    }
                    continue
                }
                content.append(b)
                i += 1
            }
            throw at(bytes.count, "a string that is never closed")
        }
        func number() throws(Failure) {
            let start = i
            if bytes[i] == UInt8(ascii: "-") { i += 1 }
            func digits() -> Int { let s = i; while i < bytes.count, bytes[i] >= 48, bytes[i] <= 57 { i += 1 }; return i - s }
            guard i < bytes.count, bytes[i] >= 48, bytes[i] <= 57 else { throw at(i, "a number needs a digit") }
            if bytes[i] == 48 { i += 1 } else { _ = digits() }
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") { i += 1; guard digits() > 0 else { throw at(i, "a digit after the decimal point") } }
            if i < bytes.count, bytes[i] | 0x20 == UInt8(ascii: "e") {
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard digits() > 0 else { throw at(i, "a digit in the exponent") }
            }
            guard let n = Double(String(decoding: bytes[start..<i], as: UTF8.self)), n.isFinite else {
                throw at(start, "a number too large to read")
            }
        }
        func value() throws(Failure) {
            skipBlanks()
            guard i < bytes.count else { throw at(i, "a value is missing (the text ends)") }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1; skipBlanks()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return }
                var keys: Set<[UInt8]> = []
                while true {
                    skipBlanks()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw at(i, "expected a key in double quotes") }
                    let keyAt = i
                    let key = try string()
                    guard keys.insert(key).inserted else {
                        throw at(keyAt, "the key \(Quoting.quoted(String(decoding: key, as: UTF8.self), limit: Quoting.tokenLimit)) appears twice in one object")
                    }
                    skipBlanks()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw at(i, "expected ':' after the key") }
                    i += 1
                    try value()
                    skipBlanks()
                    guard i < bytes.count else { throw at(i, "expected ',' or '}' (the object is never closed)") }
                    if bytes[i] == UInt8(ascii: "}") { i += 1; return }
                    guard bytes[i] == UInt8(ascii: ",") else { throw at(i, "expected ',' or '}', found \(shown(bytes[i]))") }
                    i += 1
                }
            case UInt8(ascii: "["):
                i += 1; skipBlanks()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return }
                while true {
                    try value()
                    skipBlanks()
                    guard i < bytes.count else { throw at(i, "expected ',' or ']' (the array is never closed)") }
                    if bytes[i] == UInt8(ascii: "]") { i += 1; return }
                    guard bytes[i] == UInt8(ascii: ",") else { throw at(i, "expected ',' or ']', found \(shown(bytes[i]))") }
                    i += 1
                }
            case UInt8(ascii: "\""): try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), 48...57: try number()
            default: throw at(i, "unexpected \(shown(bytes[i]))")
            }
        }
        do throws(Failure) {
            try value()
            skipBlanks()
            guard i == bytes.count else { throw at(i, "unexpected \(shown(bytes[i])) after the JSON value") }
            return nil
        } catch {
            let before = bytes.prefix(error.at)
            let line = before.filter { $0 == 0x0A }.count + 1
            let column = error.at - (before.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0) + 1
            return (line, column, error.problem)
        }
    }
}

extension String {
    /// A byte as people read it in a message: `0x1B`.
    init(format2 byte: UInt8) {
        let digits = Array("0123456789ABCDEF")
        self = "0x" + String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
