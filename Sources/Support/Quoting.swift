/// How a message shows a piece of untrusted input (a token of an app's file, a value of a
/// request): the one rule, used by every message that quotes input.
public enum Quoting {
    /// The most of a token of an app's file (release.toml, a Procfile) a message shows.
    public static let tokenLimit = 40

    /// `text` in double quotes: at most `limit` Unicode scalars of it, cut with `…`; quotes and
    /// backslashes escaped, `\n`, `\r` and `\t` written so, and control, format and separator
    /// characters (but the space) written as `\u{…}`, so that a message never carries more
    /// than a short token of a file its reader may not be allowed to see, nor anything that
    /// could rewrite the reader's terminal or log line.
    public static func quoted(_ text: some StringProtocol, limit: Int) -> String {
        var out = "\""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == limit { out += "…"; break }
            count += 1
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default: append(scalar, to: &out)
            }
        }
        return out + "\""
    }

    /// `text` as part of one line of a message, for text of ours that may hold a piece of
    /// input (an image's command name, an engine's message, both already masked): unquoted and
    /// uncut, but with line breaks, tabs, control, format and separator characters written as
    /// `quoted` writes them, so that it can neither break the line nor rewrite a terminal.
    public static func line(_ text: some StringProtocol) -> String {
        var out = ""
        for scalar in text.unicodeScalars { append(scalar, to: &out) }
        return out
    }

    private static func append(_ scalar: Unicode.Scalar, to out: inout String) {
        switch scalar {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case " ": out += " "
        default:
            if escapedCategories.contains(scalar.properties.generalCategory) {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }

    /// What is never shown raw: what is invisible or moves the text around.
    private static let escapedCategories: Set<Unicode.GeneralCategory> = [
        .control, .format, .spaceSeparator, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned,
    ]
}
