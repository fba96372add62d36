/// The project's TOML 1.0.0 parser (ReleaseTOML), for release.toml and released.toml.
///
/// It reads the whole of TOML 1.0.0: every valid document is accepted with the values the
/// specification gives it, every invalid one is a `ParseError` with its line and the problem.
/// Meaning is left to the schema (a NUL in a string, for one, is a valid string here).
///
/// Written for untrusted input: it never traps, nesting is bounded (64 levels of values, 64
/// parts to a key) so the recursion is too, the time is linear in the size of the document,
/// and a message quotes at most 40 characters of it (see `ParseError`).
public enum TOML {
    /// A TOML value. Arrays and tables hold values of any kinds, mixed.
    public indirect enum Value: Sendable, Equatable {
        /// Any of the four kinds of string, escapes resolved; it may hold any scalar, U+0000 too.
        case string(String)
        /// Every integer TOML allows, −2⁶³ … 2⁶³−1, exactly.
        case integer(Int64)
        /// An IEEE 754 binary64 value; `nan` is never equal to itself.
        case float(Double)
        /// `true` or `false`.
        case boolean(Bool)
        /// One of the four kinds of date and time, with its fields.
        case datetime(DateTime)
        /// An array (static or of tables), in written order.
        case array([Value])
        /// A table, whether from a header, dotted keys or an inline table.
        case table(Table)

        /// The string, if this is one.
        public var string: String? { if case .string(let s) = self { s } else { nil } }
        /// The integer, if this is one (a float is not converted).
        public var integer: Int64? { if case .integer(let n) = self { n } else { nil } }
        /// The float, if this is one (an integer is not converted).
        public var float: Double? { if case .float(let d) = self { d } else { nil } }
        /// The boolean, if this is one.
        public var boolean: Bool? { if case .boolean(let b) = self { b } else { nil } }
        /// The date-time, if this is one.
        public var datetime: DateTime? { if case .datetime(let d) = self { d } else { nil } }
        /// The elements, if this is an array.
        public var array: [Value]? { if case .array(let a) = self { a } else { nil } }
        /// The table, if this is one.
        public var table: Table? { if case .table(let t) = self { t } else { nil } }

        /// A short name of the kind of value, for messages ("an integer", "a local date").
        public var kind: String {
            switch self {
            case .string: "a string"
            case .integer: "an integer"
            case .float: "a float"
            case .boolean: "a boolean"
            case .datetime(let d):
                switch d.kind {
                case .offsetDateTime: "an offset date-time"
                case .localDateTime: "a local date-time"
                case .localDate: "a local date"
                case .localTime: "a local time"
                }
            case .array: "an array"
            case .table: "a table"
            }
        }
    }

    /// Why a document is not valid TOML, and on which line.
    ///
    /// The message quotes at most one token of the document, never more than 40 characters of
    /// it, with control characters escaped: a release.toml may be a file its reader should not
    /// see, so an error must not reproduce it.
    public struct ParseError: Error, Sendable, CustomStringConvertible, Equatable {
        /// The line of the problem, from 1 (a multi-line value's problem is on the line it is on).
        public var line: Int
        /// The problem, in a sentence without the line ("the table \"a\" is defined twice").
        public var message: String
        /// `line N: message`.
        public var description: String { "line \(line): \(message)" }
    }

    /// Parses a whole document into its root table. A UTF-8 byte order mark at the start is
    /// skipped; newlines may be LF or CRLF.
    public static func parse(_ text: String) throws(ParseError) -> Table {
        try TOMLParser.parse(text)
    }
}
