import ReleaseKit
import Testing

/// The dotenv syntax `releasectl --env-file` reads: KEY=value, `export`, quotes, escapes,
/// comments, multi-line double quotes, no interpolation, errors with file and line.
@Suite("dotenv")
struct DotEnvTests {
    /// Parses and returns the pairs as (key, value) tuples flattened into arrays for comparison.
    func pairs(_ text: String) throws -> [[String]] {
        try DotEnv.parse(text, file: "app.env").map { [$0.key, $0.value] }
    }

    func parseError(_ text: String) -> DotEnv.ParseError? {
        #expect(throws: DotEnv.ParseError.self) { try DotEnv.parse(text, file: "app.env") }
    }

    @Test("plain KEY=value lines, in order")
    func plain() throws {
        #expect(try pairs("A=1\nB=two\nc_lower=x\n_UNDER=y\nK9=z") == [["A", "1"], ["B", "two"], ["c_lower", "x"], ["_UNDER", "y"], ["K9", "z"]])
    }

    @Test("values and separators: blanks around '=' and the value are trimmed, inner blanks kept, '=' in values kept",
          arguments: [
              ("A = 1", "1"), ("A=  spaced out  ", "spaced out"), ("A=\tx\t", "x"), ("A=", ""), ("A=   ", ""),
              ("A=b=c", "b=c"), ("A=postgres://u:p@h:5432/db?x=1&y=2", "postgres://u:p@h:5432/db?x=1&y=2"),
              ("A=é ünïcode ✓", "é ünïcode ✓"), ("  A=indented", "indented"),
          ])
    func values(_ line: String, _ value: String) throws {
        #expect(try pairs(line) == [["A", value]])
    }

    @Test("an optional export prefix (space or tab) is dropped; 'export' alone can be a key")
    func exportPrefix() throws {
        #expect(try pairs("export A=1") == [["A", "1"]])
        #expect(try pairs("export\tA=1") == [["A", "1"]])
        #expect(try pairs("export    A=1") == [["A", "1"]])
        #expect(try pairs("  export A='q'") == [["A", "q"]])
        #expect(try pairs("export=1") == [["export", "1"]])
        #expect(try pairs("exported=1") == [["exported", "1"]])
        #expect(try pairs("EXPORT_DIR=/x") == [["EXPORT_DIR", "/x"]])
    }

    @Test("single quotes are literal: no escapes, no interpolation, '#' kept")
    func singleQuotes() throws {
        #expect(try pairs(#"A='a\nb $HOME ${X} # not a comment "dq"'"#) == [["A", #"a\nb $HOME ${X} # not a comment "dq""#]])
        #expect(try pairs("A=''") == [["A", ""]])
        #expect(try pairs("A='  kept  '") == [["A", "  kept  "]])
    }

    @Test("double quotes understand \\n \\t \\r \\\" \\\\ \\$ \\! \\` and keep other backslashes")
    func doubleQuoteEscapes() throws {
        #expect(try pairs(#"A="line1\nline2""#) == [["A", "line1\nline2"]])
        #expect(try pairs(#"A="tab\there""#) == [["A", "tab\there"]])
        #expect(try pairs(#"A="cr\r""#) == [["A", "cr\r"]])
        #expect(try pairs(#"A="say \"hi\"""#) == [["A", #"say "hi""#]])
        #expect(try pairs(#"A="back\\slash""#) == [["A", #"back\slash"#]])
        #expect(try pairs(#"A="cost \$5""#) == [["A", "cost $5"]])
        // godotenv (Dokku's config:export --format envfile) escapes ! and ` too.
        #expect(try pairs(#"A="p\!ss\`id\`""#) == [["A", "p!ss`id`"]])
        #expect(try pairs(#"A="C:\path\q""#) == [["A", #"C:\path\q"#]])
        #expect(try pairs(#"A="it's""#) == [["A", "it's"]])
        #expect(try pairs(#"A="  kept  ""#) == [["A", "  kept  "]])
        #expect(try pairs(#"A="""#) == [["A", ""]])
    }

    @Test("no interpolation: $OTHER and ${OTHER} stay as written")
    func noInterpolation() throws {
        #expect(try pairs("A=1\nB=$A\nC=${A}\nD=\"$A and ${A}\"") == [["A", "1"], ["B", "$A"], ["C", "${A}"], ["D", "$A and ${A}"]])
    }

    @Test("double (and single) quoted values may span lines; line numbers keep counting")
    func multiLine() throws {
        let text = """
            KEY="-----BEGIN KEY-----
            abc
            -----END KEY-----"
            NEXT=1
            SQ='a
            b'
            """
        #expect(try pairs(text) == [["KEY", "-----BEGIN KEY-----\nabc\n-----END KEY-----"], ["NEXT", "1"], ["SQ", "a\nb"]])
        let escapedBreak = parseError("A=\"x\\\ny\"\nbroken\n")
        #expect(escapedBreak?.line == 3, "a backslash before a line break does not hide the line: \(String(describing: escapedBreak))")
        #expect(try pairs("A=\"x\\\ny\"") == [["A", "x\\\ny"]], "an unknown escape keeps its backslash")
        let bad = "A=\"x\ny\nz\"\nB=1\nbroken\n"
        let error = parseError(bad)
        #expect(error?.line == 5, "the multi-line value took lines 1–3, B line 4, the error is on line 5: \(String(describing: error))")
    }

    @Test("comments: whole lines, indented, and after a value preceded by a blank; '#' inside a word is kept")
    func comments() throws {
        let text = """
            # a comment
               # an indented comment
            A=value # trailing comment
            B=value#not-a-comment
            C="quoted" # comment after quotes
            D='single'   #comment
            E=#starts-with-hash
            F=a\t#tab before hash
            """
        #expect(try pairs(text) == [["A", "value"], ["B", "value#not-a-comment"], ["C", "quoted"], ["D", "single"],
                                    ["E", "#starts-with-hash"], ["F", "a"]])
    }

    @Test("blank lines, whitespace-only lines, CRLF line ends and a missing final newline are fine")
    func blankLinesAndLineEnds() throws {
        #expect(try pairs("\n\n  \n\t\nA=1\n\n") == [["A", "1"]])
        #expect(try pairs("A=1\r\nB=\"two\"\r\n# c\r\n\r\nC=3") == [["A", "1"], ["B", "two"], ["C", "3"]])
        #expect(try pairs("") == [])
        #expect(try pairs("# only a comment") == [])
    }

    @Test("a repeated key appears twice, in order (the later one wins in a dictionary)")
    func duplicates() throws {
        let parsed = try DotEnv.parse("A=1\nB=2\nA=3")
        #expect(parsed.map(\.key) == ["A", "B", "A"])
        let dict = Dictionary(parsed.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        #expect(dict == ["A": "3", "B": "2"])
    }

    @Test("errors give file:line and the problem",
          arguments: [
              ("A=1\nNOEQUALS\n", 2, "expected '=' after NOEQUALS"),
              ("A=1\nB=2\n=value\n", 3, "expected KEY=VALUE, found \"=value\""),
              ("1KEY=x", 1, "expected KEY=VALUE, found \"1KEY=x\""),
              ("MY-VAR=1", 1, "expected '=' after MY"),
              ("A B=1", 1, "expected '=' after A"),
              ("export", 1, "expected '=' after export"),
              ("\n\nA=\"unterminated\nB=1\n", 3, "unterminated double-quoted value for A"),
              ("A='unterminated", 1, "unterminated single-quoted value for A"),
              ("A=\"x\" trailing", 1, "unexpected text after the quoted value of A: \"trailing\""),
              ("A='x'y", 1, "unexpected text after the quoted value of A: \"y\""),
              ("# c\nA=\"nul\\\u{0}\"", 2, "the value of A contains a NUL character"),
              ("A=a\u{0}b", 1, "the value of A contains a NUL character"),
              ("Ä=1", 1, "expected KEY=VALUE, found \"Ä=1\""),
          ])
    func errors(_ text: String, _ line: Int, _ problem: String) {
        let error = parseError(text)
        #expect(error?.file == "app.env")
        #expect(error?.line == line, "\(String(describing: error))")
        #expect(error?.problem == problem)
        #expect(error?.description == "app.env:\(line): \(problem)")
    }

    @Test("an error message shows a bad line safely (control characters escaped)")
    func errorPreview() {
        let error = parseError("\u{1b}[2J=evil")
        #expect(error?.problem == "expected KEY=VALUE, found \"\\u{1b}[2J=evil\"")
    }

    @Test("the default file name is <env>")
    func defaultFileName() {
        let error = #expect(throws: DotEnv.ParseError.self) { try DotEnv.parse("oops") }
        #expect(error?.description == "<env>:1: expected '=' after oops")
    }
}
