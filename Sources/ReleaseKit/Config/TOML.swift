/// A TOML 1.0 parser for release.toml and released.toml.
///
/// Written for untrusted input: it never traps, recursion is bounded, and every error says the
/// line and what was expected. Values are kept as `TOML.Value`; dates and times are kept as
/// their text (nothing here needs them as dates).
public enum TOML {
    public indirect enum Value: Sendable, Equatable {
        case string(String)
        case integer(Int64)
        case float(Double)
        case boolean(Bool)
        case datetime(String)
        case array([Value])
        case table(Table)

        public var string: String? { if case .string(let s) = self { s } else { nil } }
        public var integer: Int64? { if case .integer(let n) = self { n } else { nil } }
        public var array: [Value]? { if case .array(let a) = self { a } else { nil } }
        public var table: Table? { if case .table(let t) = self { t } else { nil } }

        /// A short name of the kind of value, for messages.
        public var kind: String {
            switch self {
            case .string: "a string"
            case .integer: "an integer"
            case .float: "a float"
            case .boolean: "a boolean"
            case .datetime: "a date-time"
            case .array: "an array"
            case .table: "a table"
            }
        }
    }

    /// A table: keys in the order they were written.
    public struct Table: Sendable, Equatable {
        public private(set) var keys: [String] = []
        private var values: [String: Value] = [:]

        public init() {}

        public subscript(key: String) -> Value? { values[key] }

        mutating func set(_ key: String, _ value: Value) {
            if values[key] == nil { keys.append(key) }
            values[key] = value
        }

        /// Removes a value for a moment (its key keeps its place), so that the caller holds the
        /// only reference and can change it in place; `put` puts it back.
        mutating func take(_ key: String) -> Value? { values.removeValue(forKey: key) }
        mutating func put(_ key: String, _ value: Value) { values[key] = value }
    }

    public struct ParseError: Error, Sendable, CustomStringConvertible, Equatable {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// Parses a whole document.
    public static func parse(_ text: String) throws(ParseError) -> Table {
        var parser = Parser(Array(text.utf8))
        return try parser.document()
    }
}

private struct Parser {
    let bytes: [UInt8]
    var i = 0
    var line = 1
    var root = TOML.Table()
    /// The path of the current [table] header.
    var current: [String] = []
    /// Tables defined by a [header] or as a whole value, and those frozen (inline tables, values).
    var definedTables: Set<[String]> = []
    var implicitTables: Set<[String]> = []
    var arrayTables: Set<[String]> = []
    var frozen: Set<[String]> = []
    static let maxDepth = 64

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func fail(_ message: String) -> TOML.ParseError { TOML.ParseError(line: line, message: message) }

    var atEnd: Bool { i >= bytes.count }
    var peek: UInt8? { i < bytes.count ? bytes[i] : nil }
    func peek(_ offset: Int) -> UInt8? { i + offset < bytes.count ? bytes[i + offset] : nil }

    mutating func skipBlanks() { while let c = peek, c == 0x20 || c == 0x09 { i += 1 } }

    mutating func skipComment() throws(TOML.ParseError) {
        guard peek == UInt8(ascii: "#") else { return }
        while let c = peek, c != 0x0A {
            if c == 0x0D, peek(1) == 0x0A { break }
            if (c < 0x20 && c != 0x09) || c == 0x7F { throw fail("control character in a comment") }
            i += 1
        }
    }

    /// Expects the end of a line (after blanks and a comment).
    mutating func endOfLine() throws(TOML.ParseError) {
        skipBlanks()
        try skipComment()
        if atEnd { return }
        if peek == 0x0A { i += 1; line += 1; return }
        if peek == 0x0D, peek(1) == 0x0A { i += 2; line += 1; return }
        throw fail("expected the end of the line, found \(describe(peek))")
    }

    func describe(_ c: UInt8?) -> String {
        guard let c else { return "the end of the file" }
        if c >= 0x21 && c < 0x7F { return "'\(Character(Unicode.Scalar(c)))'" }
        return "byte 0x\(String(c, radix: 16))"
    }

    mutating func document() throws(TOML.ParseError) -> TOML.Table {
        guard String(validating: bytes, as: UTF8.self) != nil else { throw TOML.ParseError(line: 1, message: "not valid UTF-8") }
        if let nul = bytes.firstIndex(of: 0) {
            let line = bytes[..<nul].reduce(1) { $1 == 0x0A ? $0 + 1 : $0 }
            throw TOML.ParseError(line: line, message: "a NUL character (\\u0000) is not allowed")
        }
        while !atEnd {
            skipBlanks()
            if atEnd { break }
            let c = bytes[i]
            if c == 0x0A || c == 0x0D || c == UInt8(ascii: "#") {
                try endOfLine()
            } else if c == UInt8(ascii: "[") {
                try header()
            } else {
                try keyValue(into: current)
                try endOfLine()
            }
        }
        return root
    }

    mutating func header() throws(TOML.ParseError) {
        i += 1
        let isArray = peek == UInt8(ascii: "[")
        if isArray { i += 1 }
        skipBlanks()
        let path = try key()
        skipBlanks()
        guard peek == UInt8(ascii: "]") else { throw fail("expected ']' to close the table header") }
        i += 1
        if isArray {
            guard peek == UInt8(ascii: "]") else { throw fail("expected ']]' to close the array-of-tables header") }
            i += 1
        }
        if isArray {
            try appendArrayTable(path)
        } else {
            if definedTables.contains(path) || arrayTables.contains(path) || frozen.contains(path) {
                throw fail("table [\(path.joined(separator: "."))] is defined twice")
            }
            try ensureTable(path, explicit: true)
            definedTables.insert(path)
        }
        current = path
        try endOfLine()
    }

    /// The table at `path`, created on the way as needed.
    mutating func ensureTable(_ path: [String], explicit: Bool) throws(TOML.ParseError) {
        var tree = root
        root = TOML.Table()
        defer { root = tree }
        try modify(path[...], in: &tree, prefix: []) { (t: inout TOML.Table) throws(TOML.ParseError) in }
        if !explicit { implicitTables.insert(path) }
    }

    mutating func appendArrayTable(_ path: [String]) throws(TOML.ParseError) {
        let parent = Array(path.dropLast())
        let name = path.last!
        if definedTables.contains(path) || frozen.contains(path) { throw fail("\(path.joined(separator: ".")) is already a table") }
        let line = self.line  // (not `self`: a copy of self would hold the tree and make every change copy it)
        let isArrayTable = arrayTables.contains(path)
        var tree = root
        root = TOML.Table()
        defer { root = tree }
        try modify(parent[...], in: &tree, prefix: []) { (t: inout TOML.Table) throws(TOML.ParseError) in
            switch t[name] {
            case nil: t.set(name, .array([.table(TOML.Table())]))
            case .array(var items)?:
                guard isArrayTable else { throw TOML.ParseError(line: line, message: "\(path.joined(separator: ".")) is a static array") }
                items.append(.table(TOML.Table()))
                t.set(name, .array(items))
            default: throw TOML.ParseError(line: line, message: "\(path.joined(separator: ".")) is already defined")
            }
        }
        arrayTables.insert(path)
        // Tables under the previous element may be defined again under this one.
        definedTables = definedTables.filter { !($0.count > path.count && Array($0.prefix(path.count)) == path) }
    }

    /// Walks to the table at `path` (descending into the last element of arrays of tables) and
    /// applies `body` to it.
    mutating func modify(_ path: ArraySlice<String>, in table: inout TOML.Table, prefix: [String],
                         _ body: (inout TOML.Table) throws(TOML.ParseError) -> Void) throws(TOML.ParseError) {
        guard let first = path.first else { return try body(&table) }
        let here = prefix + [first]
        if here.count > Self.maxDepth { throw fail("tables nested too deeply") }
        // The value is taken out of its table while it changes, so it is changed in place
        // (copying it at every insertion would make a parse quadratic).
        var slot = table.take(first)
        switch slot {
        case nil:
            var child = TOML.Table()
            try modify(path.dropFirst(), in: &child, prefix: here, body)
            table.set(first, .table(child))
            implicitTables.insert(here)
            return
        case .table(var child)?:
            slot = nil
            if frozen.contains(here) {
                table.put(first, .table(child))
                throw fail("\(here.joined(separator: ".")) is an inline table and cannot be extended")
            }
            defer { table.put(first, .table(child)) }
            try modify(path.dropFirst(), in: &child, prefix: here, body)
            return
        case .array(var items)? where arrayTables.contains(here):
            slot = nil
            defer { table.put(first, .array(items)) }
            guard case .table(var last)? = items.popLast() else { throw fail("\(here.joined(separator: ".")) is not a table") }
            defer { items.append(.table(last)) }
            try modify(path.dropFirst(), in: &last, prefix: here, body)
            return
        default:
            table.put(first, slot!)
            throw fail("\(here.joined(separator: ".")) is already a value, not a table")
        }
    }

    mutating func keyValue(into tablePath: [String]) throws(TOML.ParseError) {
        let path = try key()
        skipBlanks()
        guard peek == UInt8(ascii: "=") else { throw fail("expected '=' after the key \(path.joined(separator: "."))") }
        i += 1
        skipBlanks()
        let value = try value(depth: 0)
        let parent = Array(path.dropLast())
        let name = path.last!
        let full = tablePath + path
        // Dotted keys may not extend a table defined by a header elsewhere.
        for n in 1..<max(1, path.count) {
            let sub = tablePath + Array(path.prefix(n))
            if definedTables.contains(sub) && !tablePath.starts(with: sub) { throw fail("\(sub.joined(separator: ".")) is already defined") }
        }
        let line = self.line
        var tree = root
        root = TOML.Table()
        defer { root = tree }
        try modify((tablePath + parent)[...], in: &tree, prefix: []) { (t: inout TOML.Table) throws(TOML.ParseError) in
            if t[name] != nil { throw TOML.ParseError(line: line, message: "\(full.joined(separator: ".")) is defined twice") }
            t.set(name, value)
        }
        if case .table = value { markFrozen(full, value) }
        if case .array = value { markFrozen(full, value) }
    }

    mutating func markFrozen(_ path: [String], _ value: TOML.Value) {
        frozen.insert(path)
        if case .table(let t) = value {
            for k in t.keys { markFrozen(path + [k], t[k]!) }
        }
    }

    mutating func key() throws(TOML.ParseError) -> [String] {
        var parts: [String] = []
        while true {
            skipBlanks()
            guard let c = peek else { throw fail("expected a key") }
            if c == UInt8(ascii: "\"") {
                parts.append(try basicString())
            } else if c == UInt8(ascii: "'") {
                parts.append(try literalString())
            } else {
                let start = i
                while let c = peek, isBare(c) { i += 1 }
                if start == i { throw fail("expected a key, found \(describe(peek))") }
                parts.append(String(decoding: bytes[start..<i], as: UTF8.self))
            }
            if parts.count > Self.maxDepth { throw fail("key nested too deeply") }
            skipBlanks()
            if peek == UInt8(ascii: ".") { i += 1; continue }
            return parts
        }
    }

    func isBare(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D
    }

    mutating func value(depth: Int) throws(TOML.ParseError) -> TOML.Value {
        if depth > Self.maxDepth { throw fail("values nested too deeply") }
        guard let c = peek else { throw fail("expected a value") }
        switch c {
        case UInt8(ascii: "\""):
            if peek(1) == c && peek(2) == c { return .string(try multilineBasicString()) }
            return .string(try basicString())
        case UInt8(ascii: "'"):
            if peek(1) == c && peek(2) == c { return .string(try multilineLiteralString()) }
            return .string(try literalString())
        case UInt8(ascii: "["): return try arrayValue(depth: depth)
        case UInt8(ascii: "{"): return try inlineTable(depth: depth)
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            if matches("true") { i += 4; return .boolean(true) }
            if matches("false") { i += 5; return .boolean(false) }
            throw fail("expected a value, found \(describe(c))")
        default:
            return try numberOrDate()
        }
    }

    func matches(_ word: String) -> Bool {
        let w = Array(word.utf8)
        guard i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w else { return false }
        if let next = (i + w.count < bytes.count ? bytes[i + w.count] : nil), isBare(next) { return false }
        return true
    }

    mutating func arrayValue(depth: Int) throws(TOML.ParseError) -> TOML.Value {
        i += 1
        var items: [TOML.Value] = []
        while true {
            try skipWhitespaceNewlinesComments()
            guard let c = peek else { throw fail("unterminated array") }
            if c == UInt8(ascii: "]") { i += 1; return .array(items) }
            items.append(try value(depth: depth + 1))
            try skipWhitespaceNewlinesComments()
            if peek == UInt8(ascii: ",") { i += 1; continue }
            if peek == UInt8(ascii: "]") { i += 1; return .array(items) }
            throw fail("expected ',' or ']' in an array, found \(describe(peek))")
        }
    }

    mutating func skipWhitespaceNewlinesComments() throws(TOML.ParseError) {
        while true {
            skipBlanks()
            try skipComment()
            if peek == 0x0A { i += 1; line += 1; continue }
            if peek == 0x0D, peek(1) == 0x0A { i += 2; line += 1; continue }
            return
        }
    }

    mutating func inlineTable(depth: Int) throws(TOML.ParseError) -> TOML.Value {
        i += 1
        // Parsed with a parser of its own, then checked, so the rules for dotted keys apply.
        var sub = Parser(bytes)
        sub.i = i
        sub.line = line
        skipBlanks()
        sub.i = i
        if peek == UInt8(ascii: "}") { i += 1; return .table(TOML.Table()) }
        while true {
            sub.skipBlanks()
            try sub.keyValueInline(depth: depth)
            sub.skipBlanks()
            if sub.peek == UInt8(ascii: ",") { sub.i += 1; continue }
            if sub.peek == UInt8(ascii: "}") { sub.i += 1; break }
            throw sub.fail("expected ',' or '}' in an inline table, found \(sub.describe(sub.peek))")
        }
        i = sub.i
        line = sub.line
        return .table(sub.root)
    }

    mutating func keyValueInline(depth: Int) throws(TOML.ParseError) {
        let path = try key()
        skipBlanks()
        guard peek == UInt8(ascii: "=") else { throw fail("expected '=' after the key \(path.joined(separator: "."))") }
        i += 1
        skipBlanks()
        let v = try value(depth: depth + 1)
        let parent = Array(path.dropLast())
        let name = path.last!
        let line = self.line
        var tree = root
        root = TOML.Table()
        defer { root = tree }
        try modify(parent[...], in: &tree, prefix: []) { (t: inout TOML.Table) throws(TOML.ParseError) in
            if t[name] != nil { throw TOML.ParseError(line: line, message: "\(path.joined(separator: ".")) is defined twice") }
            t.set(name, v)
        }
        if case .table = v { markFrozen(path, v) }
    }

    // MARK: Strings

    mutating func basicString() throws(TOML.ParseError) -> String {
        i += 1
        var out: [UInt8] = []
        while true {
            guard let c = peek else { throw fail("unterminated string") }
            if c == UInt8(ascii: "\"") { i += 1; break }
            if c == 0x0A || c == 0x0D { throw fail("newline in a single-line string") }
            if c == UInt8(ascii: "\\") { try escape(into: &out); continue }
            if (c < 0x20 && c != 0x09) || c == 0x7F { throw fail("control character in a string") }
            out.append(c)
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    mutating func escape(into out: inout [UInt8]) throws(TOML.ParseError) {
        i += 1
        guard let e = peek else { throw fail("unterminated escape") }
        i += 1
        switch e {
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "e"): out.append(0x1B)
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let n = e == UInt8(ascii: "u") ? 4 : 8
            guard i + n <= bytes.count, let v = UInt32(String(decoding: bytes[i..<(i + n)], as: UTF8.self), radix: 16),
                  let scalar = Unicode.Scalar(v) else { throw fail("invalid unicode escape") }
            if v == 0 { throw fail("a NUL character (\\u0000) is not allowed") }
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
            i += n
        default:
            throw fail("invalid escape \\\(Character(Unicode.Scalar(e)))")
        }
    }

    mutating func literalString() throws(TOML.ParseError) -> String {
        i += 1
        let start = i
        while true {
            guard let c = peek else { throw fail("unterminated string") }
            if c == UInt8(ascii: "'") { break }
            if c == 0x0A || c == 0x0D { throw fail("newline in a single-line string") }
            if (c < 0x20 && c != 0x09) || c == 0x7F { throw fail("control character in a string") }
            i += 1
        }
        let s = String(decoding: bytes[start..<i], as: UTF8.self)
        i += 1
        return s
    }

    mutating func multilineBasicString() throws(TOML.ParseError) -> String {
        try multilineString(quote: UInt8(ascii: "\""), escapes: true)
    }

    mutating func multilineLiteralString() throws(TOML.ParseError) -> String {
        try multilineString(quote: UInt8(ascii: "'"), escapes: false)
    }

    /// `"""…"""` (with escapes) or `'''…'''` (literal). A newline right after the opening
    /// quotes is dropped; up to two quotes before the closing three belong to the content.
    mutating func multilineString(quote: UInt8, escapes: Bool) throws(TOML.ParseError) -> String {
        i += 3
        if peek == 0x0A { i += 1; line += 1 } else if peek == 0x0D, peek(1) == 0x0A { i += 2; line += 1 }
        var out: [UInt8] = []
        while true {
            guard let c = peek else { throw fail("unterminated multi-line string") }
            if c == quote, peek(1) == c, peek(2) == c {
                var extra = 0
                while extra < 2, peek(3 + extra) == c { extra += 1 }
                out.append(contentsOf: [UInt8](repeating: c, count: extra))
                i += 3 + extra
                break
            }
            if escapes, c == UInt8(ascii: "\\") {
                // A backslash at the end of a line trims the newline and following whitespace.
                var j = i + 1
                while j < bytes.count, bytes[j] == 0x20 || bytes[j] == 0x09 { j += 1 }
                if j < bytes.count, bytes[j] == 0x0A || (bytes[j] == 0x0D && j + 1 < bytes.count && bytes[j + 1] == 0x0A) {
                    i = j
                    while let w = peek, w == 0x20 || w == 0x09 || w == 0x0A || w == 0x0D {
                        if w == 0x0A { line += 1 }
                        i += 1
                    }
                    continue
                }
                try escape(into: &out)
                continue
            }
            if c == 0x0A { line += 1 } else if c == 0x0D {
                guard peek(1) == 0x0A else { throw fail("bare carriage return in a string") }
            } else if (c < 0x20 && c != 0x09) || c == 0x7F {
                throw fail("control character in a string")
            }
            out.append(c)
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: Numbers and dates

    mutating func numberOrDate() throws(TOML.ParseError) -> TOML.Value {
        let start = i
        // A date or time: 1979-05-27, 07:32:00, 1979-05-27T07:32:00Z, "1979-05-27 07:32:00".
        if isDigits(at: i, 4), peek(4) == UInt8(ascii: "-") || (isDigits(at: i, 2) && peek(2) == UInt8(ascii: ":")) {
            while let c = peek, isDateChar(c) || (c == 0x20 && isDigits(at: i + 1, 2) && bytes[i - 1] >= 0x30 && bytes[i - 1] <= 0x39 && !(bytes[start..<i].contains(UInt8(ascii: "T")) || bytes[start..<i].contains(UInt8(ascii: " ")))) {
                i += 1
            }
            let text = String(decoding: bytes[start..<i], as: UTF8.self)
            guard Self.isDateTime(text) else { throw fail("invalid date-time \(text)") }
            return .datetime(text)
        }
        while let c = peek, isBare(c) || c == UInt8(ascii: "+") || c == UInt8(ascii: ".") { i += 1 }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        if text.isEmpty { throw fail("expected a value, found \(describe(peek))") }
        if let n = Self.integer(text) { return .integer(n) }
        if let d = Self.float(text) { return .float(d) }
        throw fail("invalid value \(text)")
    }

    func isDigits(at position: Int, _ count: Int) -> Bool {
        guard position + count <= bytes.count else { return false }
        return bytes[position..<(position + count)].allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    func isDateChar(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "-") || c == UInt8(ascii: ":") || c == UInt8(ascii: "T")
            || c == UInt8(ascii: "t") || c == UInt8(ascii: "Z") || c == UInt8(ascii: "z") || c == UInt8(ascii: ".") || c == UInt8(ascii: "+")
    }

    static func isDateTime(_ text: String) -> Bool {
        let allowed = Set("0123456789-:TtZz.+ ")
        guard text.count >= 8, text.allSatisfy({ allowed.contains($0) }) else { return false }
        return text.first!.isNumber
    }

    static func integer(_ text: String) -> Int64? {
        var s = Substring(text)
        var sign: Int64 = 1
        if s.first == "+" || s.first == "-" {
            if s.first == "-" { sign = -1 }
            s = s.dropFirst()
        }
        var radix = 10
        if s.hasPrefix("0x") || s.hasPrefix("0o") || s.hasPrefix("0b") {
            guard sign == 1, text.first != "+" else { return nil }
            radix = s.hasPrefix("0x") ? 16 : s.hasPrefix("0o") ? 8 : 2
            s = s.dropFirst(2)
        } else if s.count > 1, s.first == "0" {
            return nil  // no leading zeros
        }
        guard !s.isEmpty, s.first != "_", s.last != "_", !s.contains("__") else { return nil }
        guard let n = Int64(s.replacing("_", with: ""), radix: radix) else { return nil }
        return sign == 1 ? n : (n == Int64.min ? nil : -n)
    }

    static func float(_ text: String) -> Double? {
        switch text {
        case "inf", "+inf": return .infinity
        case "-inf": return -.infinity
        case "nan", "+nan", "-nan": return .nan
        default: break
        }
        let body = text.hasPrefix("+") || text.hasPrefix("-") ? text.dropFirst() : Substring(text)
        guard let first = body.first, first.isNumber, !body.hasPrefix("0") || body.count == 1 || body.dropFirst().first == "." || body.dropFirst().first == "e" || body.dropFirst().first == "E" else { return nil }
        guard !text.contains("__"), !text.hasSuffix("_"), !text.contains("_."), !text.contains("._"),
              !text.contains("_e"), !text.contains("_E"), !text.contains("e_"), !text.contains("E_") else { return nil }
        if let dot = body.firstIndex(of: ".") {
            let after = body[body.index(after: dot)...]
            guard let f = after.first, f.isNumber else { return nil }
        }
        guard body.contains(".") || body.contains("e") || body.contains("E") else { return nil }
        return Double(text.replacing("_", with: ""))
    }
}
