/// A task's command: an argv array run directly, or a string run under `/bin/sh -c`.
public enum Command: Sendable, Equatable, CustomStringConvertible {
    case argv([String])
    case shell(String)

    /// The argv actually executed.
    public var arguments: [String] {
        switch self {
        case .argv(let a): a
        case .shell(let s): ["/bin/sh", "-c", s]
        }
    }

    /// How a person would type it.
    public var description: String {
        switch self {
        case .shell(let s): s
        case .argv(let a): a.map(Self.quoteIfNeeded).joined(separator: " ")
        }
    }

    static func quoteIfNeeded(_ word: String) -> String {
        let safe = word.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || "-_./:=@%+,".unicodeScalars.contains($0)
        }
        if safe && !word.isEmpty { return word }
        return "'" + word.replacing("'", with: "'\\''") + "'"
    }
}

