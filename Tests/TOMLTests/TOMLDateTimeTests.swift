import Testing
@testable import ReleaseTOML

/// TOML 1.0.0, "Offset Date-Time", "Local Date-Time", "Local Date" and "Local Time" (RFC 3339
/// with parts left out).
@Suite("TOML dates and times")
struct TOMLDateTimeTests {
    typealias DateTime = TOML.DateTime

    static func odt(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int, _ s: Int, ns: Int = 0, offset: Int) -> DateTime? {
        guard let date = DateTime.Date(year: y, month: mo, day: d), let time = DateTime.Time(hour: h, minute: mi, second: s, nanosecond: ns) else { return nil }
        return .offsetDateTime(date, time, offsetMinutes: offset)
    }

    static func ldt(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int, _ s: Int, ns: Int = 0) -> DateTime? {
        guard let date = DateTime.Date(year: y, month: mo, day: d), let time = DateTime.Time(hour: h, minute: mi, second: s, nanosecond: ns) else { return nil }
        return .localDateTime(date, time)
    }

    static func ld(_ y: Int, _ mo: Int, _ d: Int) -> DateTime? {
        DateTime.Date(year: y, month: mo, day: d).map(DateTime.localDate)
    }

    static func lt(_ h: Int, _ mi: Int, _ s: Int, ns: Int = 0) -> DateTime? {
        DateTime.Time(hour: h, minute: mi, second: s, nanosecond: ns).map(DateTime.localTime)
    }

    private func expectValue(_ document: String, _ expected: DateTime?, _ kind: DateTime.Kind) throws {
        let expected = try #require(expected, "a test case that is not a date-time")
        let value = try #require(try TOMLCheck.v(document)?.datetime, "\(document)")
        #expect(value == expected)
        #expect(value.kind == kind)
        #expect(value.date?.year == expected.date?.year && value.time?.nanosecond == expected.time?.nanosecond)
    }

    @Test("offset date-times: T, t or space; Z or z or ±HH:MM; fractions; leap days and leap seconds", arguments: [
        ("v = 1979-05-27T07:32:00Z", odt(1979, 5, 27, 7, 32, 0, offset: 0)),
        ("v = 1979-05-27T00:32:00-07:00", odt(1979, 5, 27, 0, 32, 0, offset: -420)),
        ("v = 1979-05-27T00:32:00.999999-07:00", odt(1979, 5, 27, 0, 32, 0, ns: 999_999_000, offset: -420)),
        ("v = 1979-05-27 07:32:00Z", odt(1979, 5, 27, 7, 32, 0, offset: 0)),
        ("v = 1979-05-27t07:32:00z", odt(1979, 5, 27, 7, 32, 0, offset: 0)),
        ("v = 1979-05-27T07:32:00+00:00", odt(1979, 5, 27, 7, 32, 0, offset: 0)),
        ("v = 1979-05-27T07:32:00-00:00", odt(1979, 5, 27, 7, 32, 0, offset: 0)),
        ("v = 1979-05-27T07:32:00+23:59", odt(1979, 5, 27, 7, 32, 0, offset: 1439)),
        ("v = 1979-05-27T07:32:00-23:59", odt(1979, 5, 27, 7, 32, 0, offset: -1439)),
        ("v = 1979-05-27T07:32:00+05:30", odt(1979, 5, 27, 7, 32, 0, offset: 330)),
        ("v = 1979-05-27T07:32:00.1Z", odt(1979, 5, 27, 7, 32, 0, ns: 100_000_000, offset: 0)),
        ("v = 1979-05-27T07:32:00.000Z", odt(1979, 5, 27, 7, 32, 0, offset: 0)),
        ("v = 1979-05-27T07:32:00.123456789Z", odt(1979, 5, 27, 7, 32, 0, ns: 123_456_789, offset: 0)),
        ("v = 1979-05-27T07:32:00.1234567899999Z", odt(1979, 5, 27, 7, 32, 0, ns: 123_456_789, offset: 0)),
        ("v = 2000-02-29T00:00:00Z", odt(2000, 2, 29, 0, 0, 0, offset: 0)),
        ("v = 2024-02-29T12:00:00+01:00", odt(2024, 2, 29, 12, 0, 0, offset: 60)),
        ("v = 0000-01-01T00:00:00Z", odt(0, 1, 1, 0, 0, 0, offset: 0)),  // not tomllib: year 0 is outside Python datetime
        ("v = 9999-12-31T23:59:59Z", odt(9999, 12, 31, 23, 59, 59, offset: 0)),
        ("v = 1990-12-31T23:59:60Z", odt(1990, 12, 31, 23, 59, 60, offset: 0)),  // not tomllib: tomllib refuses every second 60
        ("v = 1990-12-31T15:59:60-08:00", odt(1990, 12, 31, 15, 59, 60, offset: -480)),  // not tomllib: tomllib refuses every second 60
        ("v = 1991-01-01T05:29:60+05:30", odt(1991, 1, 1, 5, 29, 60, offset: 330)),  // not tomllib: tomllib refuses every second 60
    ])
    func offsetDateTimeValid(_ document: String, _ expected: DateTime?) throws {
        try expectValue(document, expected, .offsetDateTime)
    }

    @Test("offset date-times: months, days, hours, minutes, seconds and offsets out of range; missing or extra parts", arguments: [
        ("v = 1979-13-01T00:00:00Z", 1, "there is no month 13"),
        ("v = 1979-00-01T00:00:00Z", 1, "there is no month 0"),
        ("v = 1979-02-30T00:00:00Z", 1, "there is no day 30 in month 2 of 1979 (it has 28 days)"),
        ("v = 1979-02-29T00:00:00Z", 1, "there is no day 29 in month 2 of 1979"),
        ("v = 1900-02-29T00:00:00Z", 1, "there is no day 29 in month 2 of 1900"),
        ("v = 1979-04-31T00:00:00Z", 1, "there is no day 31 in month 4"),
        ("v = 1979-05-32T00:00:00Z", 1, "there is no day 32"),
        ("v = 1979-05-00T00:00:00Z", 1, "there is no day 0"),
        ("v = 1979-05-27T24:00:00Z", 1, "there is no hour 24"),
        ("v = 1979-05-27T07:60:00Z", 1, "there is no minute 60"),
        ("v = 1979-05-27T07:32:61Z", 1, "there is no second 61"),
        ("v = 1979-05-27T23:58:60Z", 1, "second 60 (a leap second) can only be 23:59:60 UTC"),
        ("v = 1990-12-31T23:59:60+01:00", 1, "second 60 (a leap second) can only be 23:59:60 UTC"),
        ("v = 1979-05-27T07:32:00+25:00", 1, "the offset +25:00 is out of range"),
        ("v = 1979-05-27T07:32:00+24:00", 1, "the offset +24:00 is out of range"),
        ("v = 1979-05-27T07:32:00-23:60", 1, "the offset -23:60 is out of range"),
        ("v = 1979-05-27T07:32Z", 1, "the seconds are missing"),
        ("v = 1979-05-27T07:32:00.Z", 1, "a '.' in a time needs digits after it"),
        ("v = 1979-5-27T07:32:00Z", 1, "the month must have 2 digits"),
        ("v = 79-05-27T07:32:00Z", 1, "the year must have 4 digits"),
        ("v = 1979-05-27T7:32:00Z", 1, "the hour must have 2 digits"),
        ("v = 1979-05-27T07:32:00+0700", 1, "the offset's hours must have 2 digits"),
        ("v = 1979-05-27T07:32:00+07", 1, "expected ':' after the offset's hours"),
        ("v = 1979-05-27T07:32:00+7:00", 1, "the offset's hours must have 2 digits"),
        ("v = 1979-05-27T07:32:00 Z", 1, #"expected the end of the line, found "Z""#),
        ("v = 1979-05-27X07:32:00Z", 1, "expected 'T' or a space between the date and the time"),
        ("v = 1979-05-27T07:32:00ZZ", 1, "expected the end of the date-time"),
        ("v = 1979-05-27T07:32:00Z+07:00", 1, "expected the end of the date-time"),
        ("v = 1979-05-27T07:32:00.123.4Z", 1, "expected an offset"),
        ("v = 1979-05-27T07:32:00-07:00:00", 1, "expected the end of the date-time"),
    ])
    func offsetDateTimeInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }

    @Test("local date-times: no offset; T, t or space; fractions; second 60 at any local minute", arguments: [
        ("v = 1979-05-27T07:32:00", ldt(1979, 5, 27, 7, 32, 0)),
        ("v = 1979-05-27T00:32:00.999999", ldt(1979, 5, 27, 0, 32, 0, ns: 999_999_000)),
        ("v = 1979-05-27 07:32:00", ldt(1979, 5, 27, 7, 32, 0)),
        ("v = 1979-05-27t07:32:00", ldt(1979, 5, 27, 7, 32, 0)),
        ("v = 2000-02-29T23:59:59.5", ldt(2000, 2, 29, 23, 59, 59, ns: 500_000_000)),
        ("v = 1979-05-27T12:00:60", ldt(1979, 5, 27, 12, 0, 60)),  // not tomllib: tomllib refuses every second 60
        ("v = 1979-05-27T00:00:00.0", ldt(1979, 5, 27, 0, 0, 0)),
        ("v = [1979-05-27 07:32:00, 1979-05-27 07:32:01]", nil as DateTime?),
    ])
    func localDateTimeValid(_ document: String, _ expected: DateTime?) throws {
        if expected == nil {
            // An array: the space-separated form inside brackets, next to a comma.
            let values = try #require(try TOMLCheck.v(document)?.array)
            #expect(values.compactMap(\.datetime) == [Self.ldt(1979, 5, 27, 7, 32, 0), Self.ldt(1979, 5, 27, 7, 32, 1)].compactMap { $0 })
            return
        }
        try expectValue(document, expected, .localDateTime)
    }

    @Test("local date-times: seconds required, real days and hours, a delimiter", arguments: [
        ("v = 1979-05-27T07:32", 1, "the seconds are missing"),
        ("v = 1979-05-27 07:32", 1, "the seconds are missing"),
        ("v = 1979-02-30T07:32:00", 1, "there is no day 30"),
        ("v = 1979-05-27T25:00:00", 1, "there is no hour 25"),
        ("v = 1979-05-27T07:32:00.", 1, "a '.' in a time needs digits after it"),
        ("v = 1979-05-27T", 1, "the hour must have 2 digits"),
        ("v = 1979-05-27 T07:32:00", 1, #"expected the end of the line, found "T07:32:00""#),
        ("v = 1979-05-27  07:32:00", 1, "expected the end of the line"),
        ("v = 1979-05-27_07:32:00", 1, "expected 'T' or a space"),
    ])
    func localDateTimeInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }

    @Test("local dates: leap years by the Gregorian rules, every month's last day", arguments: [
        ("v = 1979-05-27", ld(1979, 5, 27)),
        ("v = 2000-02-29", ld(2000, 2, 29)),
        ("v = 2024-02-29", ld(2024, 2, 29)),
        ("v = 0000-02-29", ld(0, 2, 29)),  // not tomllib: year 0 is outside Python datetime
        ("v = 9999-12-31", ld(9999, 12, 31)),
        ("v = 1979-01-31", ld(1979, 1, 31)),
        ("v = 1979-02-28", ld(1979, 2, 28)),
        ("v = 1979-04-30", ld(1979, 4, 30)),
        ("v = 1979-06-30", ld(1979, 6, 30)),
        ("v = 1979-09-30", ld(1979, 9, 30)),
        ("v = 1979-11-30", ld(1979, 11, 30)),
        ("v = 1979-12-31", ld(1979, 12, 31)),
        ("v = 1979-05-27 # a comment", ld(1979, 5, 27)),
    ])
    func localDateValid(_ document: String, _ expected: DateTime?) throws {
        try expectValue(document, expected, .localDate)
    }

    @Test("local dates: month 13, February 29 in common years, 31 days in short months, digits", arguments: [
        ("v = 1979-13-01", 1, "there is no month 13"),
        ("v = 1979-00-10", 1, "there is no month 0"),
        ("v = 1979-02-29", 1, "there is no day 29 in month 2 of 1979 (it has 28 days)"),
        ("v = 1900-02-29", 1, "there is no day 29 in month 2 of 1900"),
        ("v = 2100-02-29", 1, "there is no day 29 in month 2 of 2100"),
        ("v = 1979-06-31", 1, "there is no day 31 in month 6"),
        ("v = 1979-11-31", 1, "there is no day 31 in month 11"),
        ("v = 1979-05-00", 1, "there is no day 0"),
        ("v = 1979-5-27", 1, "the month must have 2 digits"),
        ("v = 1979-05-7", 1, "the day must have 2 digits"),
        ("v = 19790-05-27", 1, "the year must have 4 digits"),
        ("v = 1979/05/27", 1, "expected the end of the line"),
        ("v = 1979-05-27-", 1, "expected 'T' or a space"),
        ("v = 1979-05", 1, "expected '-' after the month"),
    ])
    func localDateInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }

    @Test("local times: HH:MM:SS with an optional fraction, truncated past nanoseconds", arguments: [
        ("v = 07:32:00", lt(7, 32, 0)),
        ("v = 00:32:00.999999", lt(0, 32, 0, ns: 999_999_000)),
        ("v = 00:00:00", lt(0, 0, 0)),
        ("v = 23:59:59", lt(23, 59, 59)),
        ("v = 23:59:60", lt(23, 59, 60)),  // not tomllib: tomllib refuses every second 60
        ("v = 12:00:00.1", lt(12, 0, 0, ns: 100_000_000)),
        ("v = 12:00:00.123456789012", lt(12, 0, 0, ns: 123_456_789)),
    ])
    func localTimeValid(_ document: String, _ expected: DateTime?) throws {
        try expectValue(document, expected, .localTime)
    }

    @Test("local times: seconds required, ranges, two digits each, no offset", arguments: [
        ("v = 07:32", 1, "the seconds are missing"),
        ("v = 24:00:00", 1, "there is no hour 24"),
        ("v = 07:60:00", 1, "there is no minute 60"),
        ("v = 07:32:61", 1, "there is no second 61"),
        ("v = 7:32:00", 1, "the hour must have 2 digits"),
        ("v = 07:32:0", 1, "the seconds must have 2 digits"),
        ("v = 07:32:000", 1, "the seconds must have 2 digits"),
        ("v = 07:32:00Z", 1, "a local time cannot have an offset"),
        ("v = 07:32:00+01:00", 1, "a local time cannot have an offset"),
        ("v = 07:32:00.", 1, "a '.' in a time needs digits after it"),
        ("v = 07:32:00 07:32:00", 1, "expected the end of the line"),
    ])
    func localTimeInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }

    @Test("TOML.DateTime: fields validated on construction, RFC 3339 description, text read back")
    func api() throws {
        #expect(DateTime.Date(year: 1979, month: 2, day: 29) == nil)
        #expect(DateTime.Date(year: 1979, month: 13, day: 1) == nil)
        #expect(DateTime.Date(year: 10000, month: 1, day: 1) == nil)
        #expect(DateTime.Time(hour: 24, minute: 0, second: 0) == nil)
        #expect(DateTime.Time(hour: 0, minute: 0, second: 61) == nil)
        #expect(DateTime.Time(hour: 0, minute: 0, second: 0, nanosecond: 1_000_000_000) == nil)
        #expect(Self.odt(1979, 5, 27, 7, 32, 0, offset: 1440) == nil)
        #expect(Self.odt(1979, 5, 27, 23, 58, 60, offset: 0) == nil)
        let cases: [(String, String)] = [
            ("1979-05-27 07:32:00.5z", "1979-05-27T07:32:00.5Z"),
            ("1979-05-27T00:32:00.999999-07:00", "1979-05-27T00:32:00.999999-07:00"),
            ("1979-05-27T07:32:00+05:30", "1979-05-27T07:32:00+05:30"),
            ("1979-05-27T07:32:00", "1979-05-27T07:32:00"),
            ("0001-01-01", "0001-01-01"),
            ("07:32:00.000000001", "07:32:00.000000001"),
        ]
        for (text, description) in cases {
            let value = try #require(DateTime(text), "\(text)")
            #expect(value.description == description)
            #expect(DateTime(value.description) == value)
        }
        #expect(DateTime("1979-02-30") == nil)
        #expect(DateTime("") == nil)
        let odt = try #require(DateTime("1979-05-27T00:32:00-07:00"))
        #expect(odt.date == DateTime.Date(year: 1979, month: 5, day: 27))
        #expect(odt.time == DateTime.Time(hour: 0, minute: 32, second: 0))
        #expect(odt.offsetMinutes == -420)
        #expect(DateTime("07:32:00")?.date == nil && DateTime("1979-05-27")?.time == nil)
        #expect(TOML.Value.datetime(odt).kind == "an offset date-time")
    }
}
