/// The four kinds of TOML string: basic (`"…"`, with escapes), multi-line basic (`"""…"""`),
/// literal (`'…'`, as written) and multi-line literal (`'''…'''`).
///
/// Each is called at its opening quote and leaves the position after its closing one. Control
/// characters other than tab are refused unescaped; in multi-line strings a newline (LF or
/// CRLF) is allowed and read as LF, and a carriage return alone is refused. Escapes give any
/// Unicode scalar value, U+0000 included.
extension TOMLScanner {
    /// `"…"`: one line, with escapes.
    mutating func basicString() throws(TOML.ParseError) -> String {
        position += 1
        var out: [UInt8] = []
        while true {
            guard let c = peek else { throw fail("unterminated string") }
            switch c {
            case TOMLByte.quote:
                position += 1
                return String(decoding: out, as: UTF8.self)
            case TOMLByte.backslash:
                try escape(into: &out)
            case _ where atNewline:
                throw fail("unterminated string (a single-line string ends with its line)")
            default:
                if Self.isControl(c) { throw fail("\(Self.codePoint(c)) must be escaped in a string") }
                out.append(c)
                position += 1
            }
        }
    }

    /// `'…'`: one line, no escapes.
    mutating func literalString() throws(TOML.ParseError) -> String {
        position += 1
        let start = position
        while true {
            guard let c = peek else { throw fail("unterminated string") }
            if c == TOMLByte.apostrophe { break }
            if atNewline { throw fail("unterminated string (a single-line string ends with its line)") }
            if Self.isControl(c) { throw fail("\(Self.codePoint(c)) is not allowed in a literal string") }
            position += 1
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        position += 1
        return text
    }

    /// `"""…"""`: escapes, newlines, and a backslash at the end of a line, which trims the
    /// newline and all whitespace and newlines after it.
    mutating func multilineBasicString() throws(TOML.ParseError) -> String {
        try multilineString(delimiter: TOMLByte.quote)
    }

    /// `'''…'''`: newlines, no escapes.
    mutating func multilineLiteralString() throws(TOML.ParseError) -> String {
        try multilineString(delimiter: TOMLByte.apostrophe)
    }

    /// A newline right after the opening delimiter is dropped; one or two quotes just before the
    /// closing delimiter belong to the content (`""""a""""` is `"a"`), three never do.
    private mutating func multilineString(delimiter q: UInt8) throws(TOML.ParseError) -> String {
        let escapes = q == TOMLByte.quote
        position += 3
        if atNewline { try newline() }
        var out: [UInt8] = []
        while true {
            guard let c = peek else { throw fail("unterminated multi-line string") }
            if c == q, peek(1) == q, peek(2) == q {
                var extra = 0
                while extra < 2, peek(3 + extra) == q { extra += 1 }
                out.append(contentsOf: repeatElement(q, count: extra))
                position += 3 + extra
                return String(decoding: out, as: UTF8.self)
            }
            switch c {
            case TOMLByte.backslash where escapes:
                if lineEndingBackslash() { continue }
                try escape(into: &out)
            case TOMLByte.lf, TOMLByte.cr:
                try newline()
                out.append(TOMLByte.lf)
            default:
                if Self.isControl(c) {
                    throw fail("\(Self.codePoint(c)) must be escaped in a string")
                }
                out.append(c)
                position += 1
            }
        }
    }

    /// At a backslash: if only whitespace follows it on its line, skips it, the newline, and
    /// the whitespace and newlines after, and answers true.
    private mutating func lineEndingBackslash() -> Bool {
        var j = position + 1
        while j < bytes.count, bytes[j] == TOMLByte.space || bytes[j] == TOMLByte.tab { j += 1 }
        guard j < bytes.count, bytes[j] == TOMLByte.lf || (bytes[j] == TOMLByte.cr && j + 1 < bytes.count && bytes[j + 1] == TOMLByte.lf) else {
            return false
        }
        position = j
        while let w = peek {
            if w == TOMLByte.space || w == TOMLByte.tab {
                position += 1
            } else if w == TOMLByte.lf {
                position += 1
                line += 1
            } else if atNewline {
                position += 2
                line += 1
            } else {
                break
            }
        }
        return true
    }

    /// At a backslash in a basic string: appends what the escape stands for.
    private mutating func escape(into out: inout [UInt8]) throws(TOML.ParseError) {
        position += 1
        guard let e = peek else { throw fail("unterminated string") }
        let simple: UInt8? = switch e {
        case UInt8(ascii: "b"): 0x08
        case UInt8(ascii: "t"): 0x09
        case UInt8(ascii: "n"): 0x0A
        case UInt8(ascii: "f"): 0x0C
        case UInt8(ascii: "r"): 0x0D
        case TOMLByte.quote: TOMLByte.quote
        case TOMLByte.backslash: TOMLByte.backslash
        default: nil
        }
        if let simple {
            out.append(simple)
            position += 1
            return
        }
        guard e == UInt8(ascii: "u") || e == UInt8(ascii: "U") else {
            throw fail("invalid escape \(TOMLProblem.quoted("\\" + scalarText(at: position)))")
        }
        let count = e == UInt8(ascii: "u") ? 4 : 8
        var value: UInt32 = 0
        for k in 1...count {
            guard let h = peek(k), let digit = Self.hexValue(h) else {
                throw fail("\\\(Character(Unicode.Scalar(e))) needs \(count) hexadecimal digits")
            }
            value = value << 4 | digit
        }
        guard let scalar = Unicode.Scalar(value) else {
            let written = String(decoding: bytes[(position - 1)...(position + count)], as: UTF8.self)
            throw fail("\(TOMLProblem.quoted(written)) is not a Unicode scalar value (surrogates D800–DFFF and values above 10FFFF are not)")
        }
        UTF8.encode(scalar) { out.append($0) }
        position += 1 + count
    }

    /// The character that starts at `index` (or "" at the end), for a message.
    private func scalarText(at index: Int) -> String {
        guard index < bytes.count else { return "" }
        var end = index + 1
        while end < bytes.count, bytes[end] & 0xC0 == 0x80 { end += 1 }
        return String(decoding: bytes[index..<end], as: UTF8.self)
    }

    static func hexValue(_ c: UInt8) -> UInt32? {
        switch c {
        case 0x30...0x39: UInt32(c - 0x30)
        case 0x41...0x46: UInt32(c - 0x41 + 10)
        case 0x61...0x66: UInt32(c - 0x61 + 10)
        default: nil
        }
    }
}
