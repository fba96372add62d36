import Testing
@testable import ReleaseTOML

/// TOML 1.0.0, "Integer", "Float" and "Boolean".
@Suite("TOML integers, floats and booleans")
struct TOMLNumberTests {
    @Test("integers: signs, underscores between digits, hex/octal/binary, the Int64 bounds exactly", arguments: [
        ("v = +99", Int64(99)),
        ("v = 42", 42),
        ("v = 0", 0),
        ("v = -17", -17),
        ("v = 1_000", 1000),
        ("v = 5_349_221", 5_349_221),
        ("v = 53_49_221", 5_349_221),
        ("v = 1_2_3_4_5", 12345),
        ("v = -0", 0),
        ("v = +0", 0),
        ("v = +1_0", 10),
        ("v = 0xDEADBEEF", 0xDEADBEEF),
        ("v = 0xdeadbeef", 0xDEADBEEF),
        ("v = 0xdead_beef", 0xDEADBEEF),
        ("v = 0o01234567", 0o1234567),
        ("v = 0o755", 0o755),
        ("v = 0b11010110", 0b11010110),
        ("v = 0x0", 0),
        ("v = 0b0", 0),
        ("v = 0x00000000000000000000001", 1),
        ("v = 9223372036854775807", Int64.max),
        ("v = -9223372036854775808", Int64.min),
        ("v = 9_223_372_036_854_775_807", Int64.max),
        ("v = 0x7FFFFFFFFFFFFFFF", Int64.max),
        ("v = 0o777777777777777777777", Int64.max),
        ("v = 0b111111111111111111111111111111111111111111111111111111111111111", Int64.max),
    ])
    func integerValid(_ document: String, _ expected: Int64) throws {
        #expect(try TOMLCheck.v(document) == .integer(expected))
    }

    @Test("integers: signs twice or on a prefix, leading zeros, stray underscores, wrong digits, out of range", arguments: [
        ("v = --5", 1, "a sign written twice"),
        ("v = ++5", 1, "a sign written twice"),
        ("v = +-5", 1, "a sign written twice"),
        ("v = -+5", 1, "a sign written twice"),
        ("v = 0x-5", 1, #""-" is not a hexadecimal digit"#),
        ("v = 0x+5", 1, #""+" is not a hexadecimal digit"#),
        ("v = -0x5", 1, "a hexadecimal integer cannot have a sign"),
        ("v = +0x5", 1, "a hexadecimal integer cannot have a sign"),
        ("v = +0o5", 1, "an octal integer cannot have a sign"),
        ("v = -0b1", 1, "a binary integer cannot have a sign"),
        ("v = 01", 1, "a leading zero is not allowed"),
        ("v = 00", 1, "a leading zero is not allowed"),
        ("v = -01", 1, "a leading zero is not allowed"),
        ("v = +01", 1, "a leading zero is not allowed"),
        ("v = 0_0", 1, "a leading zero is not allowed"),
        ("v = 1__2", 1, "an underscore must stand between two digits"),
        ("v = _1", 1, "an underscore must stand between two digits"),
        ("v = 1_", 1, "an underscore must stand between two digits"),
        ("v = -_1", 1, "an underscore must stand between two digits"),
        ("v = 0x_1", 1, "an underscore must stand between two digits"),
        ("v = 0x1_", 1, "an underscore must stand between two digits"),
        ("v = 0x1__2", 1, "an underscore must stand between two digits"),
        ("v = 0b102", 1, #""2" is not a binary digit"#),
        ("v = 0o8", 1, #""8" is not an octal digit"#),
        ("v = 0xG", 1, #""G" is not a hexadecimal digit"#),
        ("v = 0x", 1, "no digits after the prefix"),
        ("v = 0X1", 1, "the prefixes are 0x, 0o and 0b, in lower case"),
        ("v = 0O7", 1, "the prefixes are 0x, 0o and 0b, in lower case"),
        ("v = 0B1", 1, "the prefixes are 0x, 0o and 0b, in lower case"),
        ("v = 9223372036854775808", 1, "out of range for a 64-bit integer"),  // not tomllib: tomllib does not bound integers
        ("v = -9223372036854775809", 1, "out of range for a 64-bit integer"),  // not tomllib: tomllib does not bound integers
        ("v = 0x8000000000000000", 1, "out of range for a 64-bit integer"),  // not tomllib: tomllib does not bound integers
        ("v = 0o1000000000000000000000", 1, "out of range for a 64-bit integer"),  // not tomllib: tomllib does not bound integers
        ("v = 0b1000000000000000000000000000000000000000000000000000000000000000", 1, "out of range for a 64-bit integer"),  // not tomllib: tomllib does not bound integers
        ("v = 99999999999999999999999", 1, "out of range for a 64-bit integer"),  // not tomllib: tomllib does not bound integers
        ("v = 1x", 1, #"unexpected "x""#),
        ("v = +", 1, "expected a digit"),
        ("v = -", 1, "expected a digit"),
        ("v = 1 2", 1, "expected the end of the line"),
        ("v = 1,000", 1, "expected the end of the line"),
    ])
    func integerInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }

    @Test("floats: fraction and/or exponent, underscores, signed zeros, inf and nan", arguments: [
        ("v = +1.0", 1.0),
        ("v = 3.1415", 3.1415),
        ("v = -0.01", -0.01),
        ("v = 5e+22", 5e22),
        ("v = 1e06", 1e6),
        ("v = -2E-2", -2e-2),
        ("v = 6.626e-34", 6.626e-34),
        ("v = 224_617.445_991_228", 224_617.445_991_228),
        ("v = 0.0", 0.0),
        ("v = 0e0", 0.0),
        ("v = 1E5", 1e5),
        ("v = 1e+0_5", 1e5),
        ("v = 1_0.0_1e1_0", 10.01e10),
        ("v = 0.1", 0.1),
        ("v = 1e400", .infinity),
        ("v = -1e400", -.infinity),
        ("v = 1e-400", 0.0),
        ("v = inf", .infinity),
        ("v = +inf", .infinity),
        ("v = -inf", -.infinity),
    ])
    func floatValid(_ document: String, _ expected: Double) throws {
        #expect(try TOMLCheck.v(document) == .float(expected))
    }

    @Test("floats: -0.0 and +0.0 keep their signs; nan, +nan, -nan are NaN")
    func floatSignsAndNaN() throws {
        #expect(try TOMLCheck.v("v = -0.0")?.float?.sign == .minus)
        #expect(try TOMLCheck.v("v = +0.0")?.float?.sign == .plus)
        #expect(try TOMLCheck.v("v = -0e0")?.float?.sign == .minus)
        for text in ["nan", "+nan", "-nan"] {
            #expect(try TOMLCheck.v("v = \(text)")?.float?.isNaN == true, "\(text)")
        }
        #expect(try TOMLCheck.v("v = -nan")?.float?.sign == .minus)
    }

    @Test("floats: a point without digits on both sides, stray underscores, leading zeros, wrong case", arguments: [
        ("v = .7", 1, "expected a digit"),
        ("v = 7.", 1, "expected a digit in the fraction"),
        ("v = 3.e+20", 1, "expected a digit in the fraction"),
        ("v = +.7", 1, "expected a digit"),
        ("v = -.5e1", 1, "expected a digit"),
        ("v = 1._5", 1, "an underscore must stand between two digits"),
        ("v = 1_.5", 1, "an underscore must stand between two digits"),
        ("v = 1.5_", 1, "an underscore must stand between two digits"),
        ("v = 1e_5", 1, "an underscore must stand between two digits"),
        ("v = 1e5_", 1, "an underscore must stand between two digits"),
        ("v = 1__0.0", 1, "an underscore must stand between two digits"),
        ("v = 1e", 1, "expected a digit in the exponent"),
        ("v = 1e+", 1, "expected a digit in the exponent"),
        ("v = 1.5e", 1, "expected a digit in the exponent"),
        ("v = 1e+-5", 1, "expected a digit in the exponent"),
        ("v = 01.5", 1, "a leading zero is not allowed"),
        ("v = -01.5", 1, "a leading zero is not allowed"),
        ("v = 00.0", 1, "a leading zero is not allowed"),
        ("v = 00e1", 1, "a leading zero is not allowed"),
        ("v = 1.2.3", 1, #"unexpected ".3""#),
        ("v = 1e5.5", 1, #"unexpected ".5""#),
        ("v = 1e5e5", 1, #"unexpected "e5""#),
        ("v = 1.5f", 1, #"unexpected "f""#),
        ("v = 0x1.5", 1, #""." is not a hexadecimal digit"#),
        ("v = ++1.0", 1, "a sign written twice"),
        ("v = --inf", 1, "a sign written twice"),
        ("v = Inf", 1, "expected a value"),
        ("v = NaN", 1, "expected a value"),
        ("v = INF", 1, "expected a value"),
        ("v = infinity", 1, "invalid value"),
        ("v = nan1", 1, "invalid value"),
        ("v = +inf_", 1, "invalid value"),
        ("v = inf.0", 1, "invalid value"),
        ("v = 1,5", 1, "expected the end of the line"),
    ])
    func floatInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }

    @Test("booleans: true and false, lower case", arguments: [
        ("v = true", true),
        ("v = false", false),
        ("v = true # comment", true),
        ("v=false", false),
    ])
    func booleanValid(_ document: String, _ expected: Bool) throws {
        #expect(try TOMLCheck.v(document) == .boolean(expected))
    }

    @Test("booleans: other cases and near misses are not values", arguments: [
        ("v = True", 1, #"expected a value, found "True""#),
        ("v = FALSE", 1, #"expected a value, found "FALSE""#),
        ("v = tru", 1, #"expected a value, found "tru""#),
        ("v = truee", 1, #"expected a value, found "truee""#),
        ("v = true1", 1, #"expected a value, found "true1""#),
        ("v = true_", 1, #"expected a value, found "true_""#),
        ("v = yes", 1, #"expected a value, found "yes""#),
        ("v = t rue", 1, #"expected a value, found "t""#),
        ("v = truefalse", 1, "expected a value"),
    ])
    func booleanInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }
}
