import FoundationEssentials

/// RFC 3339 timestamps as they appear in requests and records: UTC, whole milliseconds.
///
/// Both directions work in whole milliseconds, so a time written and read back is the same
/// `Date`, whatever its year (a `Date` far from 2001 cannot hold .123 s exactly, and the
/// formatter would cut it to .122).
public enum Timestamp {
    private static let withFraction = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    /// UTC, so it always ends in "Z".
    private static let withoutFraction = Date.ISO8601FormatStyle()

    /// Formats as `2026-11-25T13:00:00.123Z`.
    public static func format(_ date: Date) -> String {
        let ms = milliseconds(date)
        let (seconds, fraction) = floorDivision(ms, 1000)
        let whole = withoutFraction.format(Date(timeIntervalSince1970: Double(seconds)))
        let digits = String(fraction)
        return whole.dropLast() + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }

    /// Parses RFC 3339 with or without fractional seconds, to the nearest millisecond; nil
    /// when it is not such a time.
    public static func parse(_ string: String) -> Date? {
        guard let date = (try? withFraction.parse(string)) ?? (try? withoutFraction.parse(string)) else { return nil }
        return Date(timeIntervalSince1970: Double(milliseconds(date)) / 1000)
    }

    private static func milliseconds(_ date: Date) -> Int64 {
        let ms = (date.timeIntervalSince1970 * 1000).rounded()
        // Beyond what any record holds (about ±292 million years); clamp rather than trap.
        return Int64(max(-9.2e18, min(9.2e18, ms)))
    }

    private static func floorDivision(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        let q = a / b, r = a % b
        return r < 0 ? (q - 1, r + b) : (q, r)
    }
}
