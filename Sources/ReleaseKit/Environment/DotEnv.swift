/// A parser for env files in dotenv syntax, as `releasectl --env-file` reads them.
///
/// Accepted: `KEY=value`, an optional `export ` prefix, values in single quotes (literal) or
/// double quotes (`\n`, `\t`, `\r`, `\"`, `\\`, `\$`, `\!`, `` \` `` escapes — what godotenv writes, so
/// Dokku's `config:export --format envfile` reads back as it was; may span lines), unquoted values (trimmed,
/// ending at ` #`), `#` comment lines and blank lines. No interpolation: `$OTHER` stays as
/// written. Anything else is an error giving the file and line.
public enum DotEnv {
    public struct ParseError: Error, Sendable, CustomStringConvertible, Equatable {
        public var file: String
        public var line: Int
        public var problem: String
        public var description: String { "\(file):\(line): \(problem)" }
    }

    /// The variables in order of appearance (a later duplicate replaces an earlier one when
    /// turned into a dictionary).
    public static func parse(_ text: String, file: String = "<env>") throws(ParseError) -> [(key: String, value: String)] {
        var result: [(String, String)] = []
        let scalars = Array(text.unicodeScalars)
        var i = 0
        var line = 1

        func fail(_ problem: String) -> ParseError { ParseError(file: file, line: line, problem: problem) }
        func skipInlineBlanks() { while i < scalars.count, scalars[i] == " " || scalars[i] == "\t" { i += 1 } }
        func atLineEnd() -> Bool { i >= scalars.count || scalars[i] == "\n" || (scalars[i] == "\r" && (i + 1 >= scalars.count || scalars[i + 1] == "\n")) }
        func consumeLineEnd() {
            if i < scalars.count, scalars[i] == "\r" { i += 1 }
            if i < scalars.count, scalars[i] == "\n" { i += 1; line += 1 }
        }
        func isKeyChar(_ c: Unicode.Scalar, first: Bool) -> Bool {
            (c >= "A" && c <= "Z") || (c >= "a" && c <= "z") || c == "_" || (!first && c >= "0" && c <= "9")
        }

        while i < scalars.count {
            skipInlineBlanks()
            if atLineEnd() { if i >= scalars.count { break }; consumeLineEnd(); continue }
            if scalars[i] == "#" {
                while !atLineEnd() { i += 1 }
                consumeLineEnd()
                continue
            }
            // optional "export "
            if scalars.count - i > 7, String(String.UnicodeScalarView(scalars[i..<(i + 6)])) == "export",
               scalars[i + 6] == " " || scalars[i + 6] == "\t" {
                i += 6
                skipInlineBlanks()
            }
            let keyStart = i
            while i < scalars.count, isKeyChar(scalars[i], first: i == keyStart) { i += 1 }
            let key = String(String.UnicodeScalarView(scalars[keyStart..<i]))
            if key.isEmpty {
                throw fail("expected KEY=VALUE, found \(Masking.preview(restOfLine(scalars, from: keyStart)))")
            }
            guard Syntax.isValidEnvKey(key) else {
                throw fail("the variable name \(Masking.preview(key)) is longer than 255 characters")
            }
            skipInlineBlanks()
            guard i < scalars.count, scalars[i] == "=" else {
                throw fail("expected '=' after \(key)")
            }
            i += 1
            skipInlineBlanks()
            var value = ""
            if i < scalars.count, scalars[i] == "'" || scalars[i] == "\"" {
                let quote = scalars[i]
                let startLine = line
                i += 1
                var closed = false
                while i < scalars.count {
                    let c = scalars[i]
                    if c == quote { closed = true; i += 1; break }
                    if c == "\n" { line += 1 }
                    if quote == "\"", c == "\\", i + 1 < scalars.count {
                        let n = scalars[i + 1]
                        if n == "\n" { line += 1 }   // a backslash before a line break: still a new line
                        switch n {
                        case "n": value += "\n"
                        case "t": value += "\t"
                        case "r": value += "\r"
                        case "\"": value += "\""
                        case "\\": value += "\\"
                        case "$": value += "$"
                        // What godotenv's Marshal escapes besides (Dokku's `config:export --format envfile`).
                        case "!": value += "!"
                        case "`": value += "`"
                        default: value += "\\"; value.unicodeScalars.append(n)
                        }
                        i += 2
                        continue
                    }
                    value.unicodeScalars.append(c)
                    i += 1
                }
                if !closed {
                    throw ParseError(file: file, line: startLine, problem: "unterminated \(quote == "'" ? "single" : "double")-quoted value for \(key)")
                }
                skipInlineBlanks()
                if i < scalars.count, scalars[i] == "#" { while !atLineEnd() { i += 1 } }
                guard atLineEnd() else {
                    throw fail("unexpected text after the quoted value of \(key): \(Masking.preview(restOfLine(scalars, from: i)))")
                }
            } else {
                let start = i
                while !atLineEnd() {
                    if scalars[i] == "#", i > start, scalars[i - 1] == " " || scalars[i - 1] == "\t" { break }
                    i += 1
                }
                value = String(String.UnicodeScalarView(scalars[start..<i])).trimmingBlanks()
                while !atLineEnd() { i += 1 }
            }
            if value.unicodeScalars.contains("\0") { throw fail("the value of \(key) contains a NUL character") }
            result.append((key, value))
            consumeLineEnd()
        }
        return result
    }

    private static func restOfLine(_ scalars: [Unicode.Scalar], from start: Int) -> String {
        var end = start
        while end < scalars.count, scalars[end] != "\n" { end += 1 }
        return String(String.UnicodeScalarView(scalars[start..<end]))
    }
}
