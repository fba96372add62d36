import Testing
@testable import ReleaseTOML

/// TOML 1.0.0, "String": basic, multi-line basic, literal and multi-line literal strings.
@Suite("TOML strings")
struct TOMLStringTests {
    @Test("basic strings: escapes, any scalar by \\u and \\U (U+0000 included), raw Unicode", arguments: [
        (#"v = "I'm a string. \"You can quote me\". Name\tJos\u00E9\nLocation\tSF.""#, "I'm a string. \"You can quote me\". Name\tJos\u{E9}\nLocation\tSF."),
        (#"v = "\b\t\n\f\r\"\\""#, "\u{8}\t\n\u{C}\r\"\\"),
        (#"v = "\u0000""#, "\u{0}"),
        (#"v = "a\u0000b\U00000000c""#, "a\u{0}b\u{0}c"),
        (#"v = "\u00e9\u00E9""#, "éé"),
        (#"v = "\U0001F600""#, "😀"),
        (#"v = "\U0010FFFF""#, "\u{10FFFF}"),
        (#"v = "\uD7FF\uE000""#, "\u{D7FF}\u{E000}"),
        (#"v = "\u007F\u001B""#, "\u{7F}\u{1B}"),
        (#"v = """#, ""),
        ("v = \"tab\there\"", "tab\there"),
        ("v = \"ünïcödé 汉字 😀 ʎǝʞ\"", "ünïcödé 汉字 😀 ʎǝʞ"),
        ("v = \"C1 \u{85} and BOM \u{FEFF} inside\"", "C1 \u{85} and BOM \u{FEFF} inside"),
        ("v = \"# not a comment\"", "# not a comment"),
        (#"v = "'single' quotes""#, "'single' quotes"),
        (#"v = "a\\nb""#, #"a\nb"#),
        (#"v = "\\u0000""#, #"\u0000"#),
    ])
    func basicValid(_ document: String, _ expected: String) throws {
        #expect(try TOMLCheck.v(document) == .string(expected))
    }

    @Test("basic strings: reserved escapes, bad \\u, surrogates, raw control characters, newlines", arguments: [
        (#"v = "\e""#, 1, #"invalid escape "\\e""#),
        (#"v = "\x41""#, 1, "invalid escape"),
        (#"v = "\q""#, 1, "invalid escape"),
        (#"v = "\ ""#, 1, "invalid escape"),
        (#"v = "\/""#, 1, "invalid escape"),
        (#"v = "\é""#, 1, #"invalid escape "\\é""#),
        (#"v = "\uD800""#, 1, "not a Unicode scalar value"),
        (#"v = "\uDFFF""#, 1, "not a Unicode scalar value"),
        (#"v = "\U00110000""#, 1, "not a Unicode scalar value"),
        (#"v = "\UFFFFFFFF""#, 1, "not a Unicode scalar value"),
        (#"v = "\u12""#, 1, "needs 4 hexadecimal digits"),
        (#"v = "\u12G4""#, 1, "needs 4 hexadecimal digits"),
        (#"v = "\u+123""#, 1, "needs 4 hexadecimal digits"),
        (#"v = "\U1234567""#, 1, "needs 8 hexadecimal digits"),
        (#"v = "\"#, 1, "unterminated string"),
        ("v = \"unterminated", 1, "unterminated string"),
        ("v = \"line\nbreak\"", 1, "unterminated string"),
        ("v = \"line\r\nbreak\"", 1, "unterminated string"),
        ("v = \"a\rb\"", 1, "U+000D"),
        ("v = \"\u{1}\"", 1, "U+0001"),
        ("v = \"\u{0}\"", 1, "U+0000"),
        ("v = \"\u{1B}[31m\"", 1, "U+001B"),
        ("v = \"\u{7F}\"", 1, "U+007F"),
        ("v = \"\u{1F}\"", 1, "U+001F"),
        (#"v = "a"b""#, 1, "expected the end of the line"),
        ("\n\nv = \"x", 3, "unterminated string"),
    ])
    func basicInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }

    @Test("multi-line basic strings: first newline trimmed, CRLF read as LF, line-ending backslash, quotes by the delimiters", arguments: [
        ("v = \"\"\"\nRoses are red\nViolets are blue\"\"\"", "Roses are red\nViolets are blue"),
        ("v = \"\"\"\r\nRoses are red\r\nViolets are blue\"\"\"", "Roses are red\nViolets are blue"),
        ("v = \"\"\"\nThe quick brown \\\n\n\n  fox jumps over \\\n    the lazy dog.\"\"\"", "The quick brown fox jumps over the lazy dog."),
        ("v = \"\"\"\\\n       The quick brown \\\n       fox jumps over \\\n       the lazy dog.\\\n       \"\"\"", "The quick brown fox jumps over the lazy dog."),
        ("v = \"\"\"a \\   \t\n  b\"\"\"", "a b"),
        ("v = \"\"\"a \\\r\n\r\n  b\"\"\"", "a b"),
        ("v = \"\"\"a\\\\\n  b\"\"\"", "a\\\n  b"),
        ("v = \"\"\"a\\\n\"\"\"", "a"),
        (#"v = """Here are two quotation marks: "". Simple enough.""""#, #"Here are two quotation marks: "". Simple enough."#),
        (#"v = """Here are three quotation marks: ""\".""""#, #"Here are three quotation marks: """."#),
        (#"v = """Here are fifteen quotation marks: ""\"""\"""\"""\"""\".""""#, #"Here are fifteen quotation marks: """""""""""""""."#),
        (#"v = """"This," she said, "is just a pointless statement."""""#, #""This," she said, "is just a pointless statement.""#),
        (#"v = """""""#, ""),
        ("v = \"\"\"\n\"\"\"", ""),
        (#"v = """"""""#, "\""),
        (#"v = """""""""#, "\"\""),
        (#"v = """\ttab, \u00e9, \U0001F600, \u0000""""#, "\ttab, é, 😀, \u{0}"),
        ("v = \"\"\"a\n\n\nb\n\"\"\"", "a\n\n\nb\n"),
        ("v = \"\"\"\n\nfirst newline only\"\"\"", "\nfirst newline only"),
        ("v = \"\"\"tab\there, C1 \u{85}, 'apostrophes'''\"\"\"", "tab\there, C1 \u{85}, 'apostrophes'''"),
    ])
    func multilineBasicValid(_ document: String, _ expected: String) throws {
        #expect(try TOMLCheck.v(document) == .string(expected))
    }

    @Test("multi-line basic strings: three quotes inside, unterminated, bad escapes, control characters", arguments: [
        (#"v = """Here are three quotation marks: """.""""#, 1, "expected the end of the line"),
        (#"v = """a"""""""#, 1, "expected the end of the line"),
        ("v = \"\"\"abc\ndef", 2, "unterminated multi-line string"),
        (#"v = """\e""""#, 1, "invalid escape"),
        (#"v = """a\ x""""#, 1, "invalid escape"),
        (#"v = """\uD800""""#, 1, "not a Unicode scalar value"),
        ("v = \"\"\"\u{1}\"\"\"", 1, "U+0001"),
        ("v = \"\"\"\u{7F}\"\"\"", 1, "U+007F"),
        ("v = \"\"\"\na\u{0}\"\"\"", 2, "U+0000"),
        ("v = \"\"\"a\rb\"\"\"", 1, "carriage return must be followed by a line feed"),
        ("v = \"\"\"a\\\rb\"\"\"", 1, "invalid escape"),
        ("v = \"\"\"\n\n\u{8}\"\"\"", 3, "U+0008"),
    ])
    func multilineBasicInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }

    @Test("literal strings: what you see is what you get", arguments: [
        (#"v = 'C:\Users\nodejs\templates'"#, #"C:\Users\nodejs\templates"#),
        (#"v = '\\ServerX\admin$\system32\'"#, #"\\ServerX\admin$\system32\"#),
        (#"v = 'Tom "Dubs" Preston-Werner'"#, #"Tom "Dubs" Preston-Werner"#),
        (#"v = '<\i\c*\s*>'"#, #"<\i\c*\s*>"#),
        (#"v = ''"#, ""),
        ("v = 'tab\there'", "tab\there"),
        (#"v = '\u0000'"#, #"\u0000"#),
        ("v = 'ünïcödé \u{85}'", "ünïcödé \u{85}"),
        ("v = '# not a comment'", "# not a comment"),
    ])
    func literalValid(_ document: String, _ expected: String) throws {
        #expect(try TOMLCheck.v(document) == .string(expected))
    }

    @Test("literal strings: one line, no apostrophe, no control characters", arguments: [
        ("v = 'it's'", 1, "expected the end of the line"),
        ("v = 'unterminated", 1, "unterminated string"),
        ("v = 'line\nbreak'", 1, "unterminated string"),
        ("v = 'a\rb'", 1, "U+000D"),
        ("v = '\u{1}'", 1, "U+0001"),
        ("v = '\u{7F}'", 1, "U+007F"),
        ("v = '\u{0}'", 1, "U+0000"),
    ])
    func literalInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }

    @Test("multi-line literal strings: first newline trimmed, as written otherwise, apostrophes by the delimiters", arguments: [
        (#"v = '''I [dw]on't need \d{2} apples'''"#, #"I [dw]on't need \d{2} apples"#),
        ("v = '''\nThe first newline is\ntrimmed in raw strings.\n   All other whitespace\n   is preserved.\n'''", "The first newline is\ntrimmed in raw strings.\n   All other whitespace\n   is preserved.\n"),
        (#"v = '''Here are fifteen quotation marks: """""""""""""""'''"#, #"Here are fifteen quotation marks: """"""""""""""""#),
        (#"v = ''''That,' she said, 'is still pointless.''''"#, #"'That,' she said, 'is still pointless.'"#),
        ("v = ''''''", ""),
        ("v = '''''''", "'"),
        ("v = ''''''''", "''"),
        ("v = '''\r\na\r\nb'''", "a\nb"),
        ("v = '''a\\\nb'''", "a\\\nb"),
        ("v = '''\ttab \\u0000 \\e'''", "\ttab \\u0000 \\e"),
    ])
    func multilineLiteralValid(_ document: String, _ expected: String) throws {
        #expect(try TOMLCheck.v(document) == .string(expected))
    }

    @Test("multi-line literal strings: three apostrophes inside, unterminated, control characters", arguments: [
        ("v = '''Here are fifteen apostrophes: ''''''''''''''''''", 1, "expected the end of the line"),
        ("v = '''a''''''", 1, "expected the end of the line"),
        ("v = '''abc\n", 2, "unterminated multi-line string"),
        ("v = '''\u{1}'''", 1, "U+0001"),
        ("v = '''\u{7F}'''", 1, "U+007F"),
        ("v = '''a\rb'''", 1, "carriage return must be followed by a line feed"),
        ("v = '''\n\n\u{0}'''", 3, "U+0000"),
    ])
    func multilineLiteralInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }
}
