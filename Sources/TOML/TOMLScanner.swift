/// A reading position in a TOML document, with the line it is on: the byte-level rules of
/// TOML 1.0.0 that every part of the grammar shares (whitespace, newlines, comments, bare keys)
/// and the way an error names what it found.
///
/// Newlines are LF or CRLF; a carriage return anywhere else outside a string is an error. A
/// UTF-8 byte order mark is skipped at the very start of the document and nowhere else. The
/// document is a Swift `String`, so it is valid UTF-8 by construction.
struct TOMLScanner {
    let bytes: [UInt8]
    /// The index of the next byte to read.
    var position = 0
    /// The line `position` is on, from 1.
    var line = 1

    init(_ text: String) {
        bytes = Array(text.utf8)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
    }

    var atEnd: Bool { position >= bytes.count }
    var peek: UInt8? { position < bytes.count ? bytes[position] : nil }
    func peek(_ offset: Int) -> UInt8? { position + offset < bytes.count ? bytes[position + offset] : nil }

    /// An error at the current line.
    func fail(_ message: String) -> TOML.ParseError { TOML.ParseError(line: line, message: message) }

    /// Whether a newline (LF or CRLF) starts here.
    var atNewline: Bool { peek == TOMLByte.lf || (peek == TOMLByte.cr && peek(1) == TOMLByte.lf) }

    mutating func skipWhitespace() {
        while position < bytes.count, bytes[position] == TOMLByte.space || bytes[position] == TOMLByte.tab { position += 1 }
    }

    /// Consumes the newline that starts here; a carriage return must be followed by a line feed.
    mutating func newline() throws(TOML.ParseError) {
        if peek == TOMLByte.lf {
            position += 1
        } else if peek == TOMLByte.cr, peek(1) == TOMLByte.lf {
            position += 2
        } else {
            throw fail("a carriage return must be followed by a line feed")
        }
        line += 1
    }

    /// Consumes a comment, if one starts here, up to (not including) the end of its line.
    /// Control characters other than tab are not allowed in it.
    mutating func comment() throws(TOML.ParseError) {
        guard peek == TOMLByte.hash else { return }
        while let c = peek, c != TOMLByte.lf {
            if c == TOMLByte.cr, peek(1) == TOMLByte.lf { return }
            if Self.isControl(c) { throw fail("\(Self.codePoint(c)) is not allowed in a comment") }
            position += 1
        }
    }

    /// Whitespace, an optional comment, then a newline or the end of the document.
    mutating func endOfLine() throws(TOML.ParseError) {
        skipWhitespace()
        try comment()
        if atEnd { return }
        if atNewline || peek == TOMLByte.cr { return try newline() }
        throw fail("expected the end of the line, found \(found)")
    }

    /// Whitespace, comments and newlines, as arrays allow between their values.
    mutating func skipWhitespaceCommentsNewlines() throws(TOML.ParseError) {
        while true {
            skipWhitespace()
            try comment()
            guard peek == TOMLByte.lf || peek == TOMLByte.cr else { return }
            try newline()
        }
    }

    /// What is at the current position, for "expected …, found …": the end of the file or of
    /// the line, or the token that starts here (up to whitespace or a separator), quoted.
    var found: String {
        guard let c = peek else { return "the end of the file" }
        if atNewline { return "the end of the line" }
        var end = position + 1
        var scalars = 1
        while end < bytes.count, !Self.separators.contains(bytes[end]) {
            let b = bytes[end]
            if b < 0x80 || b >= 0xC0 {  // the first byte of a scalar
                if scalars > TOMLProblem.quoteLimit { break }
                scalars += 1
            }
            end += 1
        }
        if Self.separators.contains(c) { end = position + 1 }
        return TOMLProblem.quoted(String(decoding: bytes[position..<end], as: UTF8.self))
    }

    /// The bytes that end a token in `found`.
    private static let separators: Set<UInt8> = Set([TOMLByte.space, TOMLByte.tab, TOMLByte.lf, TOMLByte.cr]
        + "=,[]{}#\"'".utf8)

    /// `A-Za-z0-9_-`: the bytes a bare key is made of.
    static func isBareKeyByte(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || isDigit(c) || c == 0x5F || c == 0x2D
    }

    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    /// The control characters TOML refuses outside escapes: U+0000–U+0008, U+000A–U+001F, U+007F
    /// (tab is allowed; newlines are handled by the caller before this is asked).
    static func isControl(_ c: UInt8) -> Bool { (c < 0x20 && c != TOMLByte.tab) || c == 0x7F }

    /// "U+001B" and the like, for messages about a control character.
    static func codePoint(_ c: UInt8) -> String {
        let hex = String(c, radix: 16, uppercase: true)
        return "the control character U+" + String(repeating: "0", count: 4 - hex.count) + hex
    }
}

/// The ASCII bytes the TOML grammar names.
enum TOMLByte {
    static let tab: UInt8 = 0x09
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let quote: UInt8 = 0x22
    static let hash: UInt8 = 0x23
    static let apostrophe: UInt8 = 0x27
    static let plus: UInt8 = 0x2B
    static let comma: UInt8 = 0x2C
    static let minus: UInt8 = 0x2D
    static let dot: UInt8 = 0x2E
    static let zero: UInt8 = 0x30
    static let colon: UInt8 = 0x3A
    static let equals: UInt8 = 0x3D
    static let openBracket: UInt8 = 0x5B
    static let backslash: UInt8 = 0x5C
    static let closeBracket: UInt8 = 0x5D
    static let underscore: UInt8 = 0x5F
    static let openBrace: UInt8 = 0x7B
    static let closeBrace: UInt8 = 0x7D
}
