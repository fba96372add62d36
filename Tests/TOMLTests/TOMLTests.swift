import Testing
@testable import ReleaseTOML

@Suite("TOML parser")
struct TOMLTests {
    @Test("the forms release.toml and released.toml use")
    func everydayDocument() throws {
        let doc = try TOML.parse("""
            # release.toml
            spool = "/var/lib/releasectl"   # trailing comment
            max-parallel = 4
            app-roots = ["/srv/apps", '/home/dokku',]
            negative = -17
            hex = 0xff
            big = 1_000_000
            ratio = 1.5e3
            on = true

            [tasks.migrate]
            command = ["bin/rails", "db:migrate"]
            timeout = "15m"

            [tasks."cache-clear"]
            command = "bundle exec rails r 'Rails.cache.clear'"

            [apps.shop]
            user = 'shop'
            limits = { cpu = 2, memory = "1G" }
            when = 1979-05-27T07:32:00Z
            """)
        #expect(doc["spool"]?.string == "/var/lib/releasectl")
        #expect(doc["max-parallel"]?.integer == 4)
        #expect(doc["app-roots"]?.array?.compactMap(\.string) == ["/srv/apps", "/home/dokku"])
        #expect(doc["negative"]?.integer == -17)
        #expect(doc["hex"]?.integer == 255)
        #expect(doc["big"]?.integer == 1_000_000)
        #expect(doc["ratio"] == .float(1500))
        #expect(doc["on"] == .boolean(true))
        let tasks = try #require(doc["tasks"]?.table)
        #expect(tasks.keys == ["migrate", "cache-clear"])
        #expect(tasks["migrate"]?.table?["command"]?.array?.compactMap(\.string) == ["bin/rails", "db:migrate"])
        #expect(tasks["cache-clear"]?.table?["command"]?.string == "bundle exec rails r 'Rails.cache.clear'")
        let shop = try #require(doc["apps"]?.table?["shop"]?.table)
        #expect(shop["user"]?.string == "shop")
        #expect(shop["limits"]?.table?["memory"]?.string == "1G")
        let when = try #require(TOML.DateTime("1979-05-27T07:32:00Z"))
        #expect(shop["when"] == .datetime(when))
        #expect(shop["when"]?.datetime?.kind == .offsetDateTime)
    }

    @Test("strings: escapes, literal, multi-line with line-ending backslash")
    func strings() throws {
        let doc = try TOML.parse(#"""
            a = "tab\there \"q\" \u00e9 \U0001F600"
            b = 'C:\path\no-escapes'
            c = """
            one
            two \
               three"""
            d = '''
            raw \n ''line'''
            """#)
        #expect(doc["a"]?.string == "tab\there \"q\" é 😀")
        #expect(doc["b"]?.string == #"C:\path\no-escapes"#)
        #expect(doc["c"]?.string == "one\ntwo three")
        #expect(doc["d"]?.string == #"raw \n ''line"#)
    }

    @Test("dotted keys and tables build the same tree")
    func dottedKeys() throws {
        let a = try TOML.parse("tasks.migrate.command = \"x\"\ntasks.migrate.timeout = \"1m\"")
        let b = try TOML.parse("[tasks.migrate]\ncommand = \"x\"\ntimeout = \"1m\"")
        #expect(a == b)
        let arrays = try TOML.parse("[[hook]]\nurl = \"a\"\n[[hook]]\nurl = \"b\"")
        #expect(arrays["hook"]?.array?.count == 2)
    }

    @Test("malformed documents are errors naming the line", arguments: [
        ("a = 1\na = 2", 2, "defined twice"),
        ("[t]\nx=1\n[t]\ny=2", 3, "defined twice"),
        ("a = \"unterminated", 1, "unterminated string"),
        ("a = 01", 1, "invalid value"),
        ("a = [1, 2", 1, "expected ',' or ']' in an array"),
        ("a = { b = 1 }\na.c = 2", 2, "inline table"),
        ("a = \"x\" b = 2", 1, "expected the end of the line"),
        ("= 1", 1, "expected a key"),
        ("a = \"\\q\"", 1, "invalid escape"),
        ("x = 1\n[[x]]", 2, "already"),
        ("a = tru", 1, "expected a value"),
        ("\n\n[a", 3, "expected ']'"),
        ("[= []comman|||", 1, "expected a key"),
    ])
    func malformed(text: String, line: Int, message: String) {
        #expect {
            try TOML.parse(text)
        } throws: { error in
            let e = error as! TOML.ParseError
            return e.line == line && e.message.contains(message)
        }
    }

    @Test("deep nesting is an error, not a stack overflow")
    func deepNesting() {
        let deep = "a = " + String(repeating: "[", count: 100_000)
        #expect(throws: TOML.ParseError.self) { try TOML.parse(deep) }
        let deepTable = "a = " + String(repeating: "{b = ", count: 10_000)
        #expect(throws: TOML.ParseError.self) { try TOML.parse(deepTable) }
    }
}

@Suite("TOML parser, larger documents")
struct TOMLSizeTests {
    @Test("a document of thousands of keys and tables parses whole")
    func manyKeys() throws {
        var text = ""
        for i in 0..<3000 { text += "k\(i) = \(i)\n" }
        for i in 0..<500 { text += "[t.n\(i)]\nv = \"x\(i)\"\n" }
        let doc = try TOML.parse(text)
        #expect(doc.keys.count == 3001)
        #expect(doc["k2999"]?.integer == 2999)
        #expect(doc["t"]?.table?.keys.count == 500)
        #expect(doc["t"]?.table?["n499"]?.table?["v"]?.string == "x499")
    }
}

/// Helpers the TOML…Tests files share.
enum TOMLCheck {
    /// A table in a compact form for comparisons: `{a={b=1},c=[1,"x"]}`, keys in their order,
    /// keys that are not bare in quotes, strings in quotes, floats and date-times as Swift and
    /// `TOML.DateTime` describe them.
    static func render(_ table: TOML.Table) -> String {
        "{" + table.keys.map { key in
            let bare = !key.isEmpty && key.utf8.allSatisfy { c in
                (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D
            }
            return (bare ? key : "\"\(key)\"") + "=" + (table[key].map(render) ?? "?")
        }.joined(separator: ",") + "}"
    }

    static func render(_ value: TOML.Value) -> String {
        switch value {
        case .string(let s): "\"\(s)\""
        case .integer(let n): String(n)
        case .float(let d): "\(d)"
        case .boolean(let b): b ? "true" : "false"
        case .datetime(let d): d.description
        case .array(let a): "[" + a.map(render).joined(separator: ",") + "]"
        case .table(let t): render(t)
        }
    }

    /// The value of `v` in a document that must parse.
    static func v(_ document: String) throws -> TOML.Value? {
        try TOML.parse(document)["v"]
    }

    /// Expects `document` to be refused on `line` with a message containing `fragment`, and
    /// the message to show no raw control character.
    static func expectInvalid(_ document: String, line: Int, _ fragment: String,
                              sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let table = try TOML.parse(document)
            Issue.record("accepted: \(render(table))", sourceLocation: sourceLocation)
        } catch {
            #expect(error.line == line, "\(error)", sourceLocation: sourceLocation)
            #expect(error.message.contains(fragment), "\(error)", sourceLocation: sourceLocation)
            #expect(!error.message.unicodeScalars.contains { $0.properties.generalCategory == .control },
                    "\(error.message.debugDescription)", sourceLocation: sourceLocation)
        }
    }
}
