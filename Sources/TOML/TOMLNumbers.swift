/// Reads a TOML 1.0.0 integer or float from its token (the run of `A-Za-z0-9_+-.` the parser
/// found where a value starts).
///
/// Integers: an optional sign, then `0` or a digit 1–9 and more digits; or, without a sign,
/// `0x`, `0o` or `0b` and digits of that base (leading zeros allowed after the prefix). Any
/// underscore must stand between two digits. The value must fit in an `Int64` exactly
/// (−2⁶³ … 2⁶³−1); anything beyond is an error, never a rounded or wrapped value.
///
/// Floats: a decimal integer part as above, then a fraction (`.` and digits) and/or an exponent
/// (`e` or `E`, an optional sign, digits that may start with zeros); or `inf` / `nan` with an
/// optional sign. The value is the nearest binary64 (so `1e400` is infinity).
enum TOMLNumbers {
    static func value(_ token: ArraySlice<UInt8>) throws(TOMLProblem) -> TOML.Value {
        var i = token.startIndex
        let end = token.endIndex
        var negative = false
        var signed = false
        if i < end, token[i] == TOMLByte.plus || token[i] == TOMLByte.minus {
            signed = true
            negative = token[i] == TOMLByte.minus
            i += 1
            if i < end, token[i] == TOMLByte.plus || token[i] == TOMLByte.minus {
                throw TOMLProblem("a sign written twice")
            }
        }
        let body = token[i...]
        if body.elementsEqual("inf".utf8) { return .float(negative ? -.infinity : .infinity) }
        if body.elementsEqual("nan".utf8) { return .float(negative ? -.nan : .nan) }
        if body.count >= 2, body[i] == TOMLByte.zero {
            let marker = body[i + 1]
            if let radix = radix(marker) {
                if signed { throw TOMLProblem("\(name(radix)) integer cannot have a sign") }
                return .integer(try based(body.dropFirst(2), radix: radix))
            }
            if marker == UInt8(ascii: "X") || marker == UInt8(ascii: "O") || marker == UInt8(ascii: "B") {
                throw TOMLProblem("the prefixes are 0x, 0o and 0b, in lower case")
            }
        }

        let integerEnd = try digits(token, from: i, of: "the number")
        let integerDigits = token[i..<integerEnd].lazy.filter { $0 != TOMLByte.underscore }.count
        if integerDigits > 1, token[i] == TOMLByte.zero { throw TOMLProblem("a leading zero is not allowed") }
        var j = integerEnd
        if j == end { return .integer(try decimal(token[i..<integerEnd], negative: negative)) }

        if token[j] == TOMLByte.dot {
            j = try digits(token, from: j + 1, of: "the fraction (a '.' needs digits on both sides)")
        }
        if j < end, token[j] == UInt8(ascii: "e") || token[j] == UInt8(ascii: "E") {
            j += 1
            if j < end, token[j] == TOMLByte.plus || token[j] == TOMLByte.minus { j += 1 }
            j = try digits(token, from: j, of: "the exponent")
        }
        guard j == end, j > integerEnd else {
            throw TOMLProblem("unexpected \(TOMLProblem.quoted(String(decoding: token[j...], as: UTF8.self)))")
        }
        let text = String(decoding: token.lazy.filter { $0 != TOMLByte.underscore }, as: UTF8.self)
        guard let double = Double(text) else { throw TOMLProblem("not a float") }
        return .float(double)
    }

    /// The end of the run of decimal digits (with underscores between them) at `start`, which
    /// must hold at least one digit.
    private static func digits(_ t: ArraySlice<UInt8>, from start: Int, of what: String) throws(TOMLProblem) -> Int {
        guard start < t.endIndex, TOMLScanner.isDigit(t[start]) else {
            if start < t.endIndex, t[start] == TOMLByte.underscore { throw underscore }
            throw TOMLProblem("expected a digit in \(what)")
        }
        var j = start + 1
        while j < t.endIndex {
            if TOMLScanner.isDigit(t[j]) {
                j += 1
            } else if t[j] == TOMLByte.underscore {
                guard j + 1 < t.endIndex, TOMLScanner.isDigit(t[j + 1]) else { throw underscore }
                j += 2
            } else {
                break
            }
        }
        return j
    }

    private static let underscore = TOMLProblem("an underscore must stand between two digits")

    /// Decimal digits (already checked) to an Int64, or out of range.
    private static func decimal(_ digits: ArraySlice<UInt8>, negative: Bool) throws(TOMLProblem) -> Int64 {
        var magnitude: UInt64 = 0
        for c in digits where c != TOMLByte.underscore {
            let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(c - TOMLByte.zero))
            if o1 || o2 { throw outOfRange }
            magnitude = sum
        }
        if negative {
            if magnitude == UInt64(Int64.max) + 1 { return .min }
            guard magnitude <= UInt64(Int64.max) else { throw outOfRange }
            return -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { throw outOfRange }
        return Int64(magnitude)
    }

    /// The digits after a `0x`, `0o` or `0b` prefix to an Int64 (never negative), or an error.
    private static func based(_ digits: ArraySlice<UInt8>, radix: UInt64) throws(TOMLProblem) -> Int64 {
        guard let first = digits.first else { throw TOMLProblem("no digits after the prefix") }
        if first == TOMLByte.underscore { throw underscore }
        var magnitude: UInt64 = 0
        var previous = TOMLByte.underscore
        for c in digits {
            defer { previous = c }
            if c == TOMLByte.underscore {
                if previous == TOMLByte.underscore { throw underscore }
                continue
            }
            guard let v = TOMLScanner.hexValue(c).map(UInt64.init), v < radix else {
                throw TOMLProblem("\(TOMLProblem.quoted(String(decoding: [c], as: UTF8.self))) is not \(name(radix)) digit")
            }
            let (shifted, o1) = magnitude.multipliedReportingOverflow(by: radix)
            let (sum, o2) = shifted.addingReportingOverflow(v)
            if o1 || o2 || sum > UInt64(Int64.max) { throw outOfRange }
            magnitude = sum
        }
        if previous == TOMLByte.underscore { throw underscore }
        return Int64(magnitude)
    }

    private static let outOfRange = TOMLProblem("out of range for a 64-bit integer (−9223372036854775808 … 9223372036854775807)")

    private static func radix(_ marker: UInt8) -> UInt64? {
        switch marker {
        case UInt8(ascii: "x"): 16
        case UInt8(ascii: "o"): 8
        case UInt8(ascii: "b"): 2
        default: nil
        }
    }

    /// "a hexadecimal", "an octal", "a binary".
    private static func name(_ radix: UInt64) -> String {
        radix == 16 ? "a hexadecimal" : radix == 8 ? "an octal" : "a binary"
    }
}
