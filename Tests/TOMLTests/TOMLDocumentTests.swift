import ReleaseSupport
import Testing
@testable import ReleaseTOML

/// TOML 1.0.0, "Spec": a UTF-8 document (a byte order mark at the very start is skipped),
/// newlines LF or CRLF, case-sensitive; and what the parser promises for untrusted input:
/// messages that quote at most 40 characters of it, bounded nesting, time linear in its size.
@Suite("TOML documents")
struct TOMLDocumentTests {
    @Test("documents: a BOM at the very start, LF and CRLF, empty documents, case-sensitive keys", arguments: [
        ("\u{FEFF}v = 1", "{v=1}"),  // not tomllib: it refuses a BOM, DESIGN.md accepts one
        ("\u{FEFF}", "{}"),  // not tomllib: it refuses a BOM, DESIGN.md accepts one
        ("", "{}"),
        ("\n\n\n", "{}"),
        ("   \t   ", "{}"),
        ("a = 1\r\nb = 2\r\n", "{a=1,b=2}"),
        ("# c\r\na = 1", "{a=1}"),
        ("a = 1\r\nb = 2\nc = 3\r\n", "{a=1,b=2,c=3}"),
        ("\r\n\r\nv = 1", "{v=1}"),
        ("\u{FEFF}# a comment\nv = 1", "{v=1}"),  // not tomllib: it refuses a BOM, DESIGN.md accepts one
        ("\u{FEFF}\r\nv = 1", "{v=1}"),  // not tomllib: it refuses a BOM, DESIGN.md accepts one
        ("\u{FEFF}[t]\r\nv = 1\r\n", "{t={v=1}}"),  // not tomllib: it refuses a BOM, DESIGN.md accepts one
        ("v = \"\u{FEFF}\"", "{v=\"\u{FEFF}\"}"),
        ("a = 1\nA = 2", "{a=1,A=2}"),
        ("v = 1", "{v=1}"),
    ])
    func documentValid(_ document: String, _ expected: String) throws {
        #expect(TOMLCheck.render(try TOML.parse(document)) == expected)
    }

    @Test("documents: a BOM anywhere but the start, a lone carriage return, control characters and other whitespace", arguments: [
        ("\n\u{FEFF}v = 1", 2, #"expected a key, found "\u{feff}v""#),
        ("\u{FEFF}\u{FEFF}v = 1", 1, #"expected a key, found "\u{feff}v""#),
        ("v = \u{FEFF}1", 1, #"expected a value, found "\u{feff}1""#),
        ("a = 1\rb = 2", 1, "a carriage return must be followed by a line feed"),
        ("\r", 1, "a carriage return must be followed by a line feed"),
        ("a = 1\r", 1, "a carriage return must be followed by a line feed"),
        ("a = 1\r\r\n", 1, "a carriage return must be followed by a line feed"),
        ("[a]\r", 1, "a carriage return must be followed by a line feed"),
        ("\u{0}", 1, #"expected a key, found "\u{0}""#),
        ("v = \u{0}", 1, #"expected a value, found "\u{0}""#),
        ("a = 1\n\u{1}a = 1", 2, #"expected a key, found "\u{1}a""#),
        ("a\u{B}= 1", 1, #"expected '=' after the key, found "\u{b}""#),
        ("\u{C}\na = 1", 1, #"expected a key, found "\u{c}""#),
        ("a\u{A0}= 1", 1, #"expected '=' after the key, found "\u{a0}""#),
        ("a = 1\n\u{2028}", 2, #"expected a key, found "\u{2028}""#),
        ("[a]\u{0}", 1, #"expected the end of the line, found "\u{0}""#),
        ("\u{7F} = 1", 1, #"expected a key, found "\u{7f}""#),
    ])
    func documentInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }

    @Test("a message quotes at most 40 characters of the document, with control and format characters escaped")
    func quotingLimit() {
        #expect(TOMLProblem.quoted(String(repeating: "a", count: 40)) == "\"" + String(repeating: "a", count: 40) + "\"")
        #expect(TOMLProblem.quoted(String(repeating: "a", count: 41)) == "\"" + String(repeating: "a", count: 40) + "…\"")
        #expect(TOMLProblem.quoted("a\u{7}b\u{1B}c\u{202E}d\u{2028}e\"\\\n\t\r\u{85}") == #""a\u{7}b\u{1b}c\u{202e}d\u{2028}e\"\\\n\t\r\u{85}""#)
        #expect(TOMLProblem.quoted(key: ["a", "b c", "", "d\"e"]) == #""a.\"b c\".\"\".\"d\\\"e\"""#)

        // A token of the document that must never show whole: 60 characters, after 40 of which
        // every message must stop.
        let secret = "s3cr3t" + String(repeating: "x", count: 54)
        let tooMuch = String(secret.prefix(41))
        let documents = [
            "\(secret) \(secret) = 1",
            "\(secret) = \(secret)",
            "v = 1\(secret)",
            "v = 0x\(secret)",
            "v = 1979-05-27T\(secret)",
            "v = 1 \(secret)",
            "v = \"\\\(secret)\"",
            "v = [1 \(secret)]",
            "v = {a = 1 \(secret)}",
            "\"\(secret)\" = 1\n\"\(secret)\" = 2",
            "[\(secret)]\n[\(secret)]",
            "[\(secret).\(secret)]\n[\(secret).\(secret)]",
            "\(secret) = 1\n[[\(secret)]]",
            "\(secret).a = {}\n\(secret).a.b = 1",
            "[\(secret)\n",
            "v = \"\u{1B}[2J\(secret)\"\nv = 2\n\"\u{1B}[2J\(secret)\" = 3\n\"\u{1B}[2J\(secret)\" = 4",
        ]
        for document in documents {
            do {
                _ = try TOML.parse(document)
                Issue.record("accepted: \(document)")
            } catch {
                #expect(!error.message.contains(tooMuch), "\(error)")
                #expect(!error.message.unicodeScalars.contains { $0.properties.generalCategory == .control }, "\(error.message.debugDescription)")
                #expect(error.message.count < 200, "\(error)")
            }
        }
    }

    @Test("the error's description is 'line N: message'")
    func errorDescription() {
        #expect(TOML.ParseError(line: 3, message: "x").description == "line 3: x")
        do {
            _ = try TOML.parse("a = 1\n\n[a]")
            Issue.record("accepted")
        } catch {
            #expect("\(error)" == #"line 3: "a" is already an integer, not a table"#)
        }
    }

    @Test("nesting is bounded: 64 levels of values are read, deeper is an error, never a stack overflow")
    func nestingBound() throws {
        let sixtyFour = "v = " + String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(try TOML.parse(sixtyFour)["v"] != nil)
        TOMLCheck.expectInvalid("v = " + String(repeating: "[", count: 66) + String(repeating: "]", count: 66), line: 1, "values nested more than 64 deep")
        let dotted = (1...60).map { "k\($0)" }.joined(separator: ".")
        TOMLCheck.expectInvalid("v = {\(dotted) = {\(dotted) = 1}}", line: 1, "values nested more than 64 deep")
        TOMLCheck.expectInvalid("v = " + String(repeating: "{a = [", count: 40), line: 1, "values nested more than 64 deep")
    }

    @Test("large documents parse in time linear in their size", .timeLimit(.minutes(1)))
    func largeDocuments() throws {
        var keys = ""
        for i in 0..<50_000 { keys += "k\(i) = \(i)\n" }
        #expect(try TOML.parse(keys).keys.count == 50_000)

        var elements = ""
        for i in 0..<20_000 { elements += "[[a]]\nv = \(i)\n[a.b]\nw = 1\n" }
        #expect(try TOML.parse(elements)["a"]?.array?.count == 20_000)

        let path = (1...63).map { "p\($0)" }.joined(separator: ".")
        var deep = ""
        for i in 0..<2_000 { deep += "[\(path).t\(i)]\nv = 1\n" }
        #expect(try TOML.parse(deep)["p1"] != nil)

        let long = "v = \"" + String(repeating: "x", count: 1_000_000) + "\""
        #expect(try TOML.parse(long)["v"]?.string?.utf8.count == 1_000_000)

        let wide = "v = [" + String(repeating: "1, ", count: 100_000) + "]"
        #expect(try TOML.parse(wide)["v"]?.array?.count == 100_000)
    }

    @Test("mutated documents parse or fail with a line in the document and a clean message; never trap")
    func mutations() {
        let seeds = [
            "[tasks.migrate]\ncommand = [\"bin/rails\", \"db:migrate\"]\ntimeout = \"15m\"\n",
            "a.b = {c = [1, 2.5, 1979-05-27T07:32:00Z, 'x', \"\"\"y\\\nz\"\"\"]}\n[[t]]\nv = 0x_ff\n",
            "\u{FEFF}k = -9223372036854775808 # c\r\n[t.\"q\"]\nd = 07:32:00.999\n",
        ]
        var rng = SeededGenerator(seed: 7)
        let alphabet = Array("[]{}=,.\"'#\\ \n\r\t_-+:0aeEtxzZT\u{0}\u{FEFF}é".unicodeScalars)
        for round in 0..<3_000 {
            var scalars = Array(seeds[round % seeds.count].unicodeScalars)
            for _ in 0..<(1 + Int(rng.next() % 6)) {
                let at = scalars.isEmpty ? 0 : Int(rng.next() % UInt64(scalars.count))
                let scalar = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                switch rng.next() % 3 {
                case 0 where !scalars.isEmpty: scalars[at] = scalar
                case 1: scalars.insert(scalar, at: at)
                default: if !scalars.isEmpty { scalars.remove(at: at) }
                }
            }
            var text = ""
            text.unicodeScalars.append(contentsOf: scalars)
            do {
                _ = try TOML.parse(text)
            } catch {
                let lines = text.utf8.count { $0 == 0x0A } + 1
                #expect((1...lines).contains(error.line), "\(error) in \(text.debugDescription)")
                #expect(!error.message.unicodeScalars.contains { $0.properties.generalCategory == .control }, "\(error.message.debugDescription)")
            }
        }
    }
}

