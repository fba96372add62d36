extension TOML {
    /// A TOML date, time or date-time, with the fields the document wrote.
    ///
    /// One of the four kinds of TOML 1.0.0 (RFC 3339 with parts left out): an offset date-time
    /// (`1979-05-27T07:32:00-07:00`, an instant), a local date-time (`1979-05-27T07:32:00`), a
    /// local date (`1979-05-27`) or a local time (`07:32:00`). `date`, `time` and
    /// `offsetMinutes` are present exactly when the kind has them, and every value is a real
    /// one: a day that exists in its month and year, hour 0–23, minute 0–59, second 0–60 (60 only
    /// where a leap second can fall), an offset within ±23:59. Nothing is converted: an offset
    /// date-time keeps its local fields and its offset, so two are equal only when written with
    /// the same fields and offset (`Z` is the offset 0).
    public struct DateTime: Sendable, Hashable, CustomStringConvertible {
        /// Which of the four TOML date-time types this is; it says which fields are present.
        public enum Kind: Sendable, Hashable {
            /// Date, time and offset: an instant.
            case offsetDateTime
            /// Date and time, no offset.
            case localDateTime
            /// Date only.
            case localDate
            /// Time only.
            case localTime
        }

        /// A day of the proleptic Gregorian calendar: year 0–9999, month 1–12, a day that
        /// exists in that month (29 February only in leap years).
        public struct Date: Sendable, Hashable {
            /// 0–9999.
            public let year: Int
            /// 1–12.
            public let month: Int
            /// 1–28, 29, 30 or 31, as the month and year have.
            public let day: Int

            /// Nil unless the date exists.
            public init?(year: Int, month: Int, day: Int) {
                guard (0...9999).contains(year), (1...12).contains(month),
                      day >= 1, day <= Self.days(inMonth: month, of: year) else { return nil }
                self.year = year
                self.month = month
                self.day = day
            }

            static func days(inMonth month: Int, of year: Int) -> Int {
                switch month {
                case 2: year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
                case 4, 6, 9, 11: 30
                default: 31
                }
            }
        }

        /// A time of day: hour 0–23, minute 0–59, second 0–60 (60 is a leap second), and the
        /// fraction of the second in nanoseconds (digits past the ninth are dropped, not rounded).
        public struct Time: Sendable, Hashable {
            /// 0–23.
            public let hour: Int
            /// 0–59.
            public let minute: Int
            /// 0–60.
            public let second: Int
            /// 0–999 999 999.
            public let nanosecond: Int

            /// Nil unless every field is in its range.
            public init?(hour: Int, minute: Int, second: Int, nanosecond: Int = 0) {
                guard (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second),
                      (0...999_999_999).contains(nanosecond) else { return nil }
                self.hour = hour
                self.minute = minute
                self.second = second
                self.nanosecond = nanosecond
            }
        }

        /// Which fields are present.
        public let kind: Kind
        /// The date, for every kind but a local time.
        public let date: Date?
        /// The time of day, for every kind but a local date.
        public let time: Time?
        /// The offset from UTC in minutes (`Z` is 0, `-07:00` is −420), for an offset date-time.
        public let offsetMinutes: Int?

        private init(kind: Kind, date: Date?, time: Time?, offsetMinutes: Int?) {
            self.kind = kind
            self.date = date
            self.time = time
            self.offsetMinutes = offsetMinutes
        }

        /// An instant. Nil if the offset is beyond ±23:59, or the second is 60 anywhere but at
        /// 23:59:60 UTC (the only place a leap second is inserted).
        public static func offsetDateTime(_ date: Date, _ time: Time, offsetMinutes: Int) -> DateTime? {
            guard (-1439...1439).contains(offsetMinutes) else { return nil }
            if time.second == 60 {
                let utc = ((time.hour * 60 + time.minute - offsetMinutes) % 1440 + 1440) % 1440
                guard utc == 23 * 60 + 59 else { return nil }
            }
            return DateTime(kind: .offsetDateTime, date: date, time: time, offsetMinutes: offsetMinutes)
        }

        /// A date and time of day with no offset (a leap second may fall at any local minute).
        public static func localDateTime(_ date: Date, _ time: Time) -> DateTime {
            DateTime(kind: .localDateTime, date: date, time: time, offsetMinutes: nil)
        }

        /// A whole day.
        public static func localDate(_ date: Date) -> DateTime {
            DateTime(kind: .localDate, date: date, time: nil, offsetMinutes: nil)
        }

        /// A time of day on no particular day.
        public static func localTime(_ time: Time) -> DateTime {
            DateTime(kind: .localTime, date: nil, time: time, offsetMinutes: nil)
        }

        /// Reads the text of a TOML date-time value (`1979-05-27 07:32:00.5Z`); nil if it is not one.
        public init?(_ text: String) {
            guard let value = try? Self.parse(Array(text.utf8)[...]) else { return nil }
            self = value
        }

        /// RFC 3339 text: `T` between date and time, `Z` for the offset 0, the fraction of a second
        /// with its trailing zeros dropped.
        public var description: String {
            var out = ""
            if let date { out += pad(date.year, 4) + "-" + pad(date.month, 2) + "-" + pad(date.day, 2) }
            if date != nil, time != nil { out += "T" }
            if let time {
                out += pad(time.hour, 2) + ":" + pad(time.minute, 2) + ":" + pad(time.second, 2)
                if time.nanosecond > 0 {
                    var fraction = pad(time.nanosecond, 9)
                    while fraction.hasSuffix("0") { fraction.removeLast() }
                    out += "." + fraction
                }
            }
            if let offsetMinutes {
                if offsetMinutes == 0 {
                    out += "Z"
                } else {
                    let m = abs(offsetMinutes)
                    out += (offsetMinutes < 0 ? "-" : "+") + pad(m / 60, 2) + ":" + pad(m % 60, 2)
                }
            }
            return out
        }

        private func pad(_ n: Int, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }

        // MARK: Reading

        /// Reads a date-time token (a space between date and time already included). Every field
        /// has its exact number of digits; seconds are required (TOML 1.0.0); a local time has no
        /// offset.
        static func parse(_ t: ArraySlice<UInt8>) throws(TOMLProblem) -> DateTime {
            var p = t.startIndex
            // A date starts with digits and '-', a time with digits and ':'.
            let firstOther = t.firstIndex { !TOMLScanner.isDigit($0) }
            if let firstOther, t[firstOther] == TOMLByte.minus {
                let year = try number(t, &p, digits: 4, of: "the year")
                try expect(t, &p, TOMLByte.minus, after: "the year")
                let month = try number(t, &p, digits: 2, of: "the month")
                try expect(t, &p, TOMLByte.minus, after: "the month")
                let day = try number(t, &p, digits: 2, of: "the day")
                guard (1...12).contains(month) else { throw TOMLProblem("there is no month \(month)") }
                guard let date = Date(year: year, month: month, day: day) else {
                    throw TOMLProblem("there is no day \(day) in month \(month) of \(year) (it has \(Date.days(inMonth: month, of: year)) days)")
                }
                if p == t.endIndex { return .localDate(date) }
                guard t[p] == UInt8(ascii: "T") || t[p] == UInt8(ascii: "t") || t[p] == TOMLByte.space else {
                    throw unexpected(t, p, expecting: "'T' or a space between the date and the time")
                }
                p += 1
                let time = try partialTime(t, &p)
                if p == t.endIndex { return .localDateTime(date, time) }
                let offset = try offset(t, &p)
                guard p == t.endIndex else { throw unexpected(t, p, expecting: "the end of the date-time") }
                guard let value = offsetDateTime(date, time, offsetMinutes: offset) else {
                    throw TOMLProblem("second 60 (a leap second) can only be 23:59:60 UTC")
                }
                return value
            }
            let time = try partialTime(t, &p)
            guard p == t.endIndex else {
                if [UInt8(ascii: "Z"), UInt8(ascii: "z"), TOMLByte.plus, TOMLByte.minus].contains(t[p]) {
                    throw TOMLProblem("a local time cannot have an offset (an offset needs a date)")
                }
                throw unexpected(t, p, expecting: "the end of the time")
            }
            return .localTime(time)
        }

        /// `HH:MM:SS` with an optional `.` and fraction digits.
        private static func partialTime(_ t: ArraySlice<UInt8>, _ p: inout Int) throws(TOMLProblem) -> Time {
            let hour = try number(t, &p, digits: 2, of: "the hour")
            try expect(t, &p, TOMLByte.colon, after: "the hour")
            let minute = try number(t, &p, digits: 2, of: "the minutes")
            guard p < t.endIndex, t[p] == TOMLByte.colon else {
                throw TOMLProblem("the seconds are missing (TOML 1.0.0 times are HH:MM:SS)")
            }
            p += 1
            let second = try number(t, &p, digits: 2, of: "the seconds")
            var nanosecond = 0
            if p < t.endIndex, t[p] == TOMLByte.dot {
                p += 1
                var count = 0
                while p < t.endIndex, TOMLScanner.isDigit(t[p]) {
                    if count < 9 { nanosecond = nanosecond * 10 + Int(t[p] - TOMLByte.zero) }
                    count += 1
                    p += 1
                }
                if count == 0 { throw TOMLProblem("a '.' in a time needs digits after it") }
                for _ in count..<max(count, 9) { nanosecond *= 10 }
            }
            guard hour <= 23 else { throw TOMLProblem("there is no hour \(hour)") }
            guard minute <= 59 else { throw TOMLProblem("there is no minute \(minute)") }
            guard let time = Time(hour: hour, minute: minute, second: second, nanosecond: nanosecond) else {
                throw TOMLProblem("there is no second \(second)")
            }
            return time
        }

        /// `Z`, `z`, or `+HH:MM` / `-HH:MM`, in minutes.
        private static func offset(_ t: ArraySlice<UInt8>, _ p: inout Int) throws(TOMLProblem) -> Int {
            let c = t[p]
            if c == UInt8(ascii: "Z") || c == UInt8(ascii: "z") {
                p += 1
                return 0
            }
            guard c == TOMLByte.plus || c == TOMLByte.minus else {
                throw unexpected(t, p, expecting: "an offset (Z, +HH:MM or -HH:MM)")
            }
            p += 1
            let hours = try number(t, &p, digits: 2, of: "the offset's hours")
            try expect(t, &p, TOMLByte.colon, after: "the offset's hours")
            let minutes = try number(t, &p, digits: 2, of: "the offset's minutes")
            guard hours <= 23, minutes <= 59 else {
                throw TOMLProblem("the offset \(c == TOMLByte.plus ? "+" : "-")\(pad2(hours)):\(pad2(minutes)) is out of range (at most ±23:59)")
            }
            return (c == TOMLByte.minus ? -1 : 1) * (hours * 60 + minutes)
        }

        private static func pad2(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

        /// Exactly `digits` decimal digits.
        private static func number(_ t: ArraySlice<UInt8>, _ p: inout Int, digits: Int, of what: String) throws(TOMLProblem) -> Int {
            var n = 0
            for k in 0..<digits {
                guard p + k < t.endIndex, TOMLScanner.isDigit(t[p + k]) else {
                    throw TOMLProblem("\(what) must have \(digits) digits")
                }
                n = n * 10 + Int(t[p + k] - TOMLByte.zero)
            }
            p += digits
            if p < t.endIndex, TOMLScanner.isDigit(t[p]) { throw TOMLProblem("\(what) must have \(digits) digits") }
            return n
        }

        private static func expect(_ t: ArraySlice<UInt8>, _ p: inout Int, _ c: UInt8, after what: String) throws(TOMLProblem) {
            guard p < t.endIndex, t[p] == c else {
                throw unexpected(t, p, expecting: "'\(Character(Unicode.Scalar(c)))' after \(what)")
            }
            p += 1
        }

        private static func unexpected(_ t: ArraySlice<UInt8>, _ p: Int, expecting what: String) -> TOMLProblem {
            guard p < t.endIndex else { return TOMLProblem("expected \(what)") }
            return TOMLProblem("expected \(what), found \(TOMLProblem.quoted(String(decoding: t[p...], as: UTF8.self)))")
        }
    }
}
