/// Durations as release.toml and released.toml write them: `<n>ms`, `<n>s`, `<n>m`, `<n>h`,
/// combinable (`1h30m`), or a bare number of seconds.
public enum DurationParser {
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var text: String
        public var description: String {
            "\(Masking.preview(text)) is not a duration (examples: 90, 30s, 15m, 1h30m, 500ms)"
        }
    }

    public static func parse(_ text: String) throws(ParseError) -> Duration {
        let s = text.trimmingBlanks()
        guard !s.isEmpty else { throw ParseError(text: text) }
        if let seconds = UInt64(s) {
            // Zero is no duration, as "0s" is not (and `timeout = 0` is refused in the TOML files).
            guard seconds > 0, seconds <= 366 * 86_400 else { throw ParseError(text: text) }
            return .seconds(Int64(seconds))
        }
        var total: Duration = .zero
        var digits = ""
        var unit = ""
        var parts: [(UInt64, String)] = []
        for c in s {
            if c.isASCII && c.isNumber {
                if !unit.isEmpty {
                    guard let n = UInt64(digits) else { throw ParseError(text: text) }
                    parts.append((n, unit)); digits = ""; unit = ""
                }
                digits.append(c)
            } else if c.isASCII && c.isLetter {
                guard !digits.isEmpty else { throw ParseError(text: text) }
                unit.append(c)
            } else {
                throw ParseError(text: text)
            }
        }
        guard let n = UInt64(digits), !unit.isEmpty else { throw ParseError(text: text) }
        parts.append((n, unit))
        for (n, unit) in parts {
            guard n <= 366 * 86_400 * 1000 else { throw ParseError(text: text) }
            let value = Int64(n)
            switch unit {
            case "ms": total += .milliseconds(value)
            case "s": total += .seconds(value)
            case "m": total += .seconds(value * 60)
            case "h": total += .seconds(value * 3600)
            default: throw ParseError(text: text)
            }
        }
        guard total > .zero, total <= .seconds(366 * 86_400) else { throw ParseError(text: text) }
        return total
    }

    /// Writes a duration back the short way: `1h30m`, `45s`, `250ms`.
    public static func format(_ d: Duration) -> String {
        var ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        if ms == 0 { return "0s" }
        var out = ""
        let h = ms / 3_600_000; ms %= 3_600_000
        let m = ms / 60_000; ms %= 60_000
        let s = ms / 1000; ms %= 1000
        if h > 0 { out += "\(h)h" }
        if m > 0 { out += "\(m)m" }
        if s > 0 { out += "\(s)s" }
        if ms > 0 { out += "\(ms)ms" }
        return out
    }
}

extension Duration {
    /// Whole milliseconds.
    public var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
