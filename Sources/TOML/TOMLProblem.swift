import ReleaseSupport

/// What is wrong with a piece of a TOML document, before the parser adds the line it is on.
///
/// The number, date and tree code report a `TOMLProblem`; `TOMLParser` turns it into a
/// `TOML.ParseError` with the line. Every message that shows a piece of the document builds it
/// with `quoted(_:)` or `quoted(key:)`, so the rule for showing input is kept in one place.
struct TOMLProblem: Error, Sendable {
    var message: String

    init(_ message: String) { self.message = message }

    /// The most of a token a message shows, in Unicode scalars.
    static let quoteLimit = Quoting.tokenLimit

    /// `text` as a message may show it (see `Quoting`): at most `quoteLimit` (40) scalars.
    static func quoted(_ text: some StringProtocol) -> String {
        Quoting.quoted(text, limit: quoteLimit)
    }

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
