import Testing
@testable import ReleaseTOML

/// TOML 1.0.0, "Comment", "Key/Value Pair" and "Keys".
@Suite("TOML comments, key/value pairs and keys")
struct TOMLKeyTests {
    @Test("comments: to the end of the line, anywhere but in a string; tab and non-ASCII allowed", arguments: [
        ("# This is a full-line comment\nv = 1", "{v=1}"),
        ("v = 1  # This is a comment at the end of a line", "{v=1}"),
        ("v = \"# This is not a comment\"", ##"{v="# This is not a comment"}"##),
        ("v = 1 #\ttab, ünïcödé, C1 \u{85}, 😀", "{v=1}"),
        ("#no space\nv = 1#x", "{v=1}"),
        ("v = 1 # c\r\nw = 2 # d\r\n", "{v=1,w=2}"),
        ("# only a comment", "{}"),
        ("v = 1 # \"\"\" ''' [x] = { ,", "{v=1}"),
        ("v = [1, # in an array\n 2]", "{v=[1,2]}"),
        ("[t] # after a header\nv = 1", "{t={v=1}}"),
        ("[[a]] # after an array-of-tables header", "{a=[{}]}"),
        ("#", "{}"),
        ("v = 1 #", "{v=1}"),
    ])
    func commentValid(_ document: String, _ expected: String) throws {
        #expect(TOMLCheck.render(try TOML.parse(document)) == expected)
    }

    @Test("comments: control characters other than tab are refused", arguments: [
        ("# bell \u{7}\nv = 1", 1, "the control character U+0007 is not allowed in a comment"),
        ("v = 1 # \u{7F}", 1, "U+007F"),
        ("v = 1 # nul \u{0}", 1, "U+0000"),
        ("v = 1 # bare cr \r v", 1, "U+000D"),
        ("\n# escape \u{1B}[31m", 2, "U+001B"),
        ("v = 1 # vt \u{B}", 1, "U+000B"),
        ("v = 1 # ff \u{C}", 1, "U+000C"),
        ("v = [1, # \u{1}\n2]", 1, "U+0001"),
        ("[t] # \u{1F}", 1, "U+001F"),
    ])
    func commentInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }

    @Test("key/value pairs: whitespace around key, equals and value ignored, indentation too", arguments: [
        ("v = 1", "{v=1}"),
        ("v=1", "{v=1}"),
        ("v \t=\t 1", "{v=1}"),
        ("  \tv = 1", "{v=1}"),
        ("v = 1\n", "{v=1}"),
        ("v = 1   \t", "{v=1}"),
        ("v = \"\"\"\nspans\nlines\"\"\"\nw = 2", #"{v="spans\#nlines",w=2}"#),
        ("v = [\n1,\n2\n]\nw = 3", "{v=[1,2],w=3}"),
        ("b = 1\na = 2\nc = 3", "{b=1,a=2,c=3}"),
    ])
    func keyValueValid(_ document: String, _ expected: String) throws {
        #expect(TOMLCheck.render(try TOML.parse(document)) == expected)
    }

    @Test("key/value pairs: a value is required, on the same line; one pair to a line", arguments: [
        ("v = ", 1, "expected a value, found the end of the file"),
        ("v = # INVALID", 1, ##"expected a value, found "#""##),
        ("v =\n1", 1, "expected a value, found the end of the line"),
        ("v\n= 1", 1, "expected '=' after the key, found the end of the line"),
        ("first = \"Tom\" last = \"Preston-Werner\" # INVALID", 1, #"expected the end of the line, found "last""#),
        ("v = 1 2", 1, #"expected the end of the line, found "2""#),
        ("v 1", 1, #"expected '=' after the key, found "1""#),
        ("v = 1,", 1, #"expected the end of the line, found ",""#),
        ("v == 1", 1, #"expected a value, found "=""#),
        ("v = \"a\"\"b\"", 1, "expected the end of the line"),
        ("v = [1]]", 1, #"expected the end of the line, found "]""#),
        ("v = {}}", 1, #"expected the end of the line, found "}""#),
        ("v = 1 w = 2", 1, "expected the end of the line"),
        ("v = ]", 1, #"expected a value, found "]""#),
        ("v: 1", 1, #"expected '=' after the key, found ":""#),
    ])
    func keyValueInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }

    @Test("keys: bare (ASCII letters, digits, - and _), quoted (either string kind, any Unicode, empty), dotted", arguments: [
        ("key = 1", "{key=1}"),
        ("bare_key = 1", "{bare_key=1}"),
        ("bare-key = 1", "{bare-key=1}"),
        ("1234 = 1", "{1234=1}"),
        ("-_- = 1", "{-_-=1}"),
        ("ABC = 1\nabc = 2", "{ABC=1,abc=2}"),
        ("\"127.0.0.1\" = 1", #"{"127.0.0.1"=1}"#),
        ("\"character encoding\" = 1", #"{"character encoding"=1}"#),
        ("\"ʎǝʞ\" = 1", #"{"ʎǝʞ"=1}"#),
        ("'key2' = 1", "{key2=1}"),
        ("'quoted \"value\"' = 1", #"{"quoted "value""=1}"#),
        ("\"\" = 1", #"{""=1}"#),
        ("'' = 1", #"{""=1}"#),
        (#""a\tb" = 1"#, "{\"a\tb\"=1}"),
        (#""\u00e9" = 1"#, #"{"é"=1}"#),
        (#""\u0000" = 1"#, "{\"\u{0}\"=1}"),
        ("physical.color = \"orange\"\nphysical.shape = \"round\"", #"{physical={color="orange",shape="round"}}"#),
        ("site.\"google.com\" = true", #"{site={"google.com"=true}}"#),
        ("fruit.name = 1\nfruit. color = 2\nfruit . flavor = 3", "{fruit={name=1,color=2,flavor=3}}"),
        ("a\t.\tb = 1", "{a={b=1}}"),
        ("3.14159 = \"pi\"", #"{3={14159="pi"}}"#),
        ("a.\"\".b = 1", #"{a={""={b=1}}}"#),
        ("'a.b'.c = 1", #"{"a.b"={c=1}}"#),
        ("\"a\".b = 1\na.c = 2", "{a={b=1,c=2}}"),
        ("true = 1\nfalse = 2\ninf = 3\nnan = 4", "{true=1,false=2,inf=3,nan=4}"),
        ("1979-05-27 = 1", "{1979-05-27=1}"),
        ("0x1 = 1", "{0x1=1}"),
        ("fruit.apple.smooth = true\nfruit.orange = 2", "{fruit={apple={smooth=true},orange=2}}"),
        ("apple.type = 1\norange.type = 2\napple.skin = 3\norange.skin = 4", "{apple={type=1,skin=3},orange={type=2,skin=4}}"),
        ("a.b.c.d.e.f.g.h = 1", "{a={b={c={d={e={f={g={h=1}}}}}}}}"),
    ])
    func keyValid(_ document: String, _ expected: String) throws {
        #expect(TOMLCheck.render(try TOML.parse(document)) == expected)
    }

    @Test("keys: empty bare keys, multi-line string keys, stray dots, non-ASCII bare keys, a key defined twice", arguments: [
        ("= 1", 1, #"expected a key, found "=""#),
        ("\"\"\"key\"\"\" = 1", 1, "a key cannot be a multi-line string"),
        ("'''key''' = 1", 1, "a key cannot be a multi-line string"),
        ("a. = 1", 1, #"expected a key, found "=""#),
        (".a = 1", 1, #"expected a key, found ".a""#),
        ("a..b = 1", 1, #"expected a key, found ".b""#),
        ("a b = 1", 1, #"expected '=' after the key, found "b""#),
        ("a.b c = 1", 1, #"expected '=' after the key, found "c""#),
        ("ʎǝʞ = 1", 1, #"expected a key, found "ʎǝʞ""#),
        ("a@b = 1", 1, #"expected '=' after the key, found "@b""#),
        ("name = \"Tom\"\nname = \"Pradyun\"", 2, #""name" is defined twice"#),
        ("spelling = \"favorite\"\n\"spelling\" = \"favourite\"", 2, #""spelling" is defined twice"#),
        ("fruit.apple = 1\nfruit.apple.smooth = true", 2, #""fruit.apple" is already an integer, not a table"#),
        ("a = \"x\"\na.b = 1", 2, #""a" is already a string, not a table"#),
        ("\"a\nb\" = 1", 1, "unterminated string"),
        ("a\n.b = 1", 1, "expected '=' after the key, found the end of the line"),
        ("'a = 1", 1, "unterminated string"),
        ("a.\n", 1, "expected a key, found the end of the line"),
        ("\"a b\".c d = 1", 1, #"expected '=' after the key, found "d""#),
    ])
    func keyInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }

    @Test("keys: at most 64 parts, so a path cannot nest without bound")
    func keyParts() throws {
        let sixtyFour = (1...64).map { "k\($0)" }.joined(separator: ".")
        #expect(try TOML.parse("\(sixtyFour) = 1")["k1"] != nil)
        TOMLCheck.expectInvalid("\(sixtyFour).k65 = 1", line: 1, "a key has more than 64 parts")
        TOMLCheck.expectInvalid("[\(sixtyFour).k65]", line: 1, "a key has more than 64 parts")
    }
}
