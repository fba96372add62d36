import ReleaseKit
import Testing

/// Durations as the TOML files and `--timeout` write them.
@Suite("durations")
struct DurationParserTests {
    @Test("units ms, s, m, h; combinations; a bare number is seconds; blanks around are ignored",
          arguments: [
              ("90", Duration.seconds(90)), ("1", .seconds(1)), ("500ms", .milliseconds(500)), ("30s", .seconds(30)),
              ("15m", .seconds(900)), ("1h", .seconds(3600)), ("1h30m", .seconds(5400)), ("2h5s", .seconds(7205)),
              ("1m30s250ms", .milliseconds(90_250)), ("1h1m1s1ms", .milliseconds(3_661_001)), (" 5m ", .seconds(300)),
              ("\t10s\n", .seconds(10)), ("0h5m", .seconds(300)), ("90m", .seconds(5400)), ("1500ms", .milliseconds(1500)),
              ("366h", .seconds(366 * 3600)), ("31622400", .seconds(31_622_400)), ("8784h", .seconds(31_622_400)),
          ])
    func valid(_ text: String, _ expected: Duration) throws {
        #expect(try DurationParser.parse(text) == expected)
    }

    @Test("anything else is an error quoting the text with examples",
          arguments: ["", " ", "0", "0s", "0ms", "0h0m", "abc", "5x", "5d", "m", "h1", "1.5h", "1,5h", "-5", "-5s", "+5s", "5 m",
                      "1h 30m", "5M", "5S", "1H", "5sec", "5min", "5mss", "1h-30m", "30s!", "∞", "５s", "99999999999999999999",
                      "31622401", "8785h", "100000000000ms", "1e3"])
    func invalid(_ text: String) {
        let error = #expect(throws: DurationParser.ParseError.self) { try DurationParser.parse(text) }
        #expect(error?.text == text)
        #expect(error?.description == "\(Masking.preview(text)) is not a duration (examples: 90, 30s, 15m, 1h30m, 500ms)")
    }

    @Test("format writes the short form", arguments: [
        (Duration.seconds(5400), "1h30m"), (.seconds(45), "45s"), (.milliseconds(250), "250ms"), (.zero, "0s"),
        (.seconds(3600), "1h"), (.milliseconds(3_661_001), "1h1m1s1ms"), (.seconds(60), "1m"), (.seconds(36_000), "10h"),
        (.microseconds(1500), "1ms"),
    ])
    func format(_ duration: Duration, _ text: String) {
        #expect(DurationParser.format(duration) == text)
    }

    @Test("what format writes, parse reads back", arguments: [1, 999, 1000, 59_999, 60_000, 3_599_999, 3_600_000, 86_400_000, 123_456_789])
    func roundTrip(_ ms: Int64) throws {
        let d = Duration.milliseconds(ms)
        #expect(try DurationParser.parse(DurationParser.format(d)) == d)
    }

    @Test("whole milliseconds of a duration")
    func milliseconds() {
        #expect(Duration.seconds(2).milliseconds == 2000)
        #expect(Duration.milliseconds(1234).milliseconds == 1234)
        #expect(Duration.microseconds(2999).milliseconds == 2)
        #expect(Duration.zero.milliseconds == 0)
    }
}
