/// What is wrong with a piece of a TOML document, before the parser adds the line it is on.
///
/// The number, date and tree code report a `TOMLProblem`; `TOMLParser` turns it into a
/// `TOML.ParseError` with the line. Every message that shows a piece of the document builds it
/// with `quoted(_:)` or `quoted(key:)`, so the rule for showing input is kept in one place.
struct TOMLProblem: Error, Sendable {
    var message: String

    init(_ message: String) { self.message = message }

    /// The most of a token a message shows, in Unicode scalars.
    static let quoteLimit = 40

    /// `text` in double quotes, as a message may show it: at most `quoteLimit` (40) Unicode
    /// scalars of it, cut with `…`; quotes and backslashes escaped, and control, format and
    /// separator characters (but the space) written as `\u{…}`, so that a message never carries
    /// more than a short token of a file its reader may not be allowed to see, nor anything that
    /// could rewrite the reader's terminal or log line.
    static func quoted(_ text: some StringProtocol) -> String {
        var out = "\""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == quoteLimit { out += "…"; break }
            count += 1
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case " ": out += " "
            default:
                if escapedCategories.contains(scalar.properties.generalCategory) {
                    out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// What `quoted(_:)` never shows raw: what is invisible or moves the text around.
    private static let escapedCategories: Set<Unicode.GeneralCategory> = [
        .control, .format, .spaceSeparator, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned,
    ]

    /// A key path as TOML would write it (`a."b c".d`), through `quoted(_:)`.
    static func quoted(key path: [String]) -> String {
        quoted(path.map(written).joined(separator: "."))
    }

    /// One key part as written in a document: bare when it can be, else a basic string.
    private static func written(_ part: String) -> String {
        let bare = !part.isEmpty && part.utf8.allSatisfy(TOMLScanner.isBareKeyByte)
        if bare { return part }
        var out = "\""
        for scalar in part.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
