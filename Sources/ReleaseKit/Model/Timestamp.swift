import FoundationEssentials

/// RFC 3339 timestamps as they appear in requests and records: UTC, milliseconds.
public enum Timestamp {
    private static let withFraction = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let withoutFraction = Date.ISO8601FormatStyle()

    /// Formats as `2026-11-25T13:00:00.123Z`.
    public static func format(_ date: Date) -> String {
        withFraction.format(date)
    }

    /// Parses RFC 3339 with or without fractional seconds; nil when it is not such a time.
    public static func parse(_ string: String) -> Date? {
        if let date = try? withFraction.parse(string) { return date }
        return try? withoutFraction.parse(string)
    }
}
