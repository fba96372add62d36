/// Reads a TOML 1.0.0 document: its lines (key/value pairs, `[table]` and `[[array]]` headers,
/// comments), keys, and values; `TOMLTree` keeps the rules for what each defines.
///
/// Bounded for untrusted input: values nest at most `maxDepth` deep (arrays, inline tables and
/// the tables an inline table's dotted keys make all count), a key has at most `maxKeyParts`
/// parts, so the recursion is bounded and the stack cannot overflow.
struct TOMLParser {
    static let maxDepth = 64
    static let maxKeyParts = 64

    private var s: TOMLScanner

    static func parse(_ text: String) throws(TOML.ParseError) -> TOML.Table {
        var parser = TOMLParser(s: TOMLScanner(text))
        var tree = TOMLTree()
        try parser.document(into: &tree)
        return tree.table()
    }

    private init(s: TOMLScanner) { self.s = s }

    private mutating func document(into tree: inout TOMLTree) throws(TOML.ParseError) {
        while true {
            s.skipWhitespace()
            guard let c = s.peek else { return }
            switch c {
            case TOMLByte.lf, TOMLByte.cr:
                try s.newline()
            case TOMLByte.hash:
                try s.comment()
            case TOMLByte.openBracket:
                try header(into: &tree)
                try s.endOfLine()
            default:
                try keyValue(into: &tree, depth: 0)
                try s.endOfLine()
            }
        }
    }

    /// `[key]` or `[[key]]`.
    private mutating func header(into tree: inout TOMLTree) throws(TOML.ParseError) {
        let line = s.line
        s.position += 1
        let isArray = s.peek == TOMLByte.openBracket
        if isArray { s.position += 1 }
        let path = try key()
        guard s.peek == TOMLByte.closeBracket, !isArray || s.peek(1) == TOMLByte.closeBracket else {
            if s.peek == TOMLByte.closeBracket { s.position += 1 }  // found: what follows a single ']'
            throw s.fail(isArray ? "expected ']]' to close the array-of-tables header, found \(s.found)"
                                 : "expected ']' to close the table header, found \(s.found)")
        }
        s.position += isArray ? 2 : 1
        do throws(TOMLProblem) {
            if isArray { try tree.appendTable(path) } else { try tree.defineTable(path) }
        } catch {
            throw TOML.ParseError(line: line, message: error.message)
        }
    }

    /// `key = value`, defined in `tree`. `depth` is the nesting of the table it goes in.
    private mutating func keyValue(into tree: inout TOMLTree, depth: Int) throws(TOML.ParseError) {
        let line = s.line
        let path = try key()
        guard s.peek == TOMLByte.equals else {
            throw s.fail("expected '=' after the key, found \(s.found)")
        }
        s.position += 1
        s.skipWhitespace()
        let v = try value(depth: depth + path.count - 1)
        do throws(TOMLProblem) {
            try tree.define(path, v)
        } catch {
            throw TOML.ParseError(line: line, message: error.message)
        }
    }

    /// A bare, quoted or dotted key (whitespace allowed around the dots), and the whitespace
    /// after it.
    private mutating func key() throws(TOML.ParseError) -> [String] {
        var parts: [String] = []
        while true {
            s.skipWhitespace()
            guard let c = s.peek else { throw s.fail("expected a key, found the end of the file") }
            if c == TOMLByte.quote || c == TOMLByte.apostrophe {
                if s.peek(1) == c, s.peek(2) == c { throw s.fail("a key cannot be a multi-line string") }
                parts.append(c == TOMLByte.quote ? try s.basicString() : try s.literalString())
            } else if TOMLScanner.isBareKeyByte(c) {
                let start = s.position
                while let b = s.peek, TOMLScanner.isBareKeyByte(b) { s.position += 1 }
                parts.append(String(decoding: s.bytes[start..<s.position], as: UTF8.self))
            } else {
                throw s.fail("expected a key, found \(s.found)")
            }
            if parts.count > Self.maxKeyParts { throw s.fail("a key has more than \(Self.maxKeyParts) parts") }
            s.skipWhitespace()
            guard s.peek == TOMLByte.dot else { return parts }
            s.position += 1
        }
    }

    private mutating func value(depth: Int) throws(TOML.ParseError) -> TOML.Value {
        if depth > Self.maxDepth { throw s.fail("values nested more than \(Self.maxDepth) deep") }
        guard let c = s.peek else { throw s.fail("expected a value, found the end of the file") }
        switch c {
        case TOMLByte.quote:
            return .string(s.peek(1) == c && s.peek(2) == c ? try s.multilineBasicString() : try s.basicString())
        case TOMLByte.apostrophe:
            return .string(s.peek(1) == c && s.peek(2) == c ? try s.multilineLiteralString() : try s.literalString())
        case TOMLByte.openBracket:
            return try array(depth: depth)
        case TOMLByte.openBrace:
            return try inlineTable(depth: depth)
        default:
            return try scalar()
        }
    }

    /// A boolean, number or date-time: the run of bytes that can make one (and, after a date,
    /// a space and the time).
    private mutating func scalar() throws(TOML.ParseError) -> TOML.Value {
        let start = s.position
        skipScalarBytes()
        if s.position - start == 10, s.bytes[start + 4] == TOMLByte.minus, s.peek == TOMLByte.space,
           let next = s.peek(1), TOMLScanner.isDigit(next) {
            s.position += 1
            skipScalarBytes()
        }
        let token = s.bytes[start..<s.position]
        guard let first = token.first else { throw s.fail("expected a value, found \(s.found)") }
        if token.elementsEqual("true".utf8) { return .boolean(true) }
        if token.elementsEqual("false".utf8) { return .boolean(false) }
        let isLetter = (first | 0x20) >= UInt8(ascii: "a") && (first | 0x20) <= UInt8(ascii: "z")
        if isLetter, first != UInt8(ascii: "i"), first != UInt8(ascii: "n") {
            s.position = start
            throw s.fail("expected a value, found \(s.found)")
        }
        do throws(TOMLProblem) {
            let afterDigits = token.firstIndex { !TOMLScanner.isDigit($0) }
            if let afterDigits, afterDigits > start, token[afterDigits] == TOMLByte.minus || token[afterDigits] == TOMLByte.colon {
                return .datetime(try TOML.DateTime.parse(token))
            }
            return try TOMLNumbers.value(token)
        } catch {
            let text = String(decoding: token, as: UTF8.self)
            throw s.fail("invalid value \(TOMLProblem.quoted(text)): \(error.message)")
        }
    }

    private mutating func skipScalarBytes() {
        while let b = s.peek, TOMLScanner.isBareKeyByte(b) || b == TOMLByte.plus || b == TOMLByte.dot || b == TOMLByte.colon {
            s.position += 1
        }
    }

    /// `[ … ]`: values of any kinds, separated by commas, a trailing comma allowed; newlines
    /// and comments anywhere between.
    private mutating func array(depth: Int) throws(TOML.ParseError) -> TOML.Value {
        s.position += 1
        var items: [TOML.Value] = []
        while true {
            try s.skipWhitespaceCommentsNewlines()
            if s.peek == TOMLByte.closeBracket {
                s.position += 1
                return .array(items)
            }
            items.append(try value(depth: depth + 1))
            try s.skipWhitespaceCommentsNewlines()
            switch s.peek {
            case TOMLByte.comma?:
                s.position += 1
            case TOMLByte.closeBracket?:
                s.position += 1
                return .array(items)
            default:
                throw s.fail("expected ',' or ']' in an array, found \(s.found)")
            }
        }
    }

    /// `{ key = value, … }` on one line (a value inside may span lines), no trailing comma.
    /// Built as a table of its own, so it is whole and closed once read.
    private mutating func inlineTable(depth: Int) throws(TOML.ParseError) -> TOML.Value {
        s.position += 1
        var inner = TOMLTree()
        s.skipWhitespace()
        if s.peek == TOMLByte.closeBrace {
            s.position += 1
            return .table(inner.table())
        }
        while true {
            s.skipWhitespace()
            if s.atNewline || s.peek == TOMLByte.cr { throw s.fail("an inline table must be on one line (a newline is allowed only inside a value)") }
            if s.peek == TOMLByte.closeBrace { throw s.fail("a trailing comma is not allowed in an inline table") }
            try keyValue(into: &inner, depth: depth + 1)
            s.skipWhitespace()
            switch s.peek {
            case TOMLByte.comma?:
                s.position += 1
            case TOMLByte.closeBrace?:
                s.position += 1
                return .table(inner.table())
            case TOMLByte.lf?, TOMLByte.cr?:
                throw s.fail("an inline table must be on one line (a newline is allowed only inside a value)")
            case TOMLByte.hash?:
                throw s.fail("a comment is not allowed in an inline table")
            default:
                throw s.fail("expected ',' or '}' in an inline table, found \(s.found)")
            }
        }
    }
}
