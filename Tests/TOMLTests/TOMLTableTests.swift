import Testing
@testable import ReleaseTOML

/// TOML 1.0.0, "Array", "Table", "Inline Table" and "Array of Tables", and every way the
/// specification forbids defining a key or a table twice.
@Suite("TOML arrays and tables")
struct TOMLTableTests {
    private func expectParse(_ document: String, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(TOMLCheck.render(try TOML.parse(document)) == expected, sourceLocation: sourceLocation)
    }

    @Test("arrays: any values, mixed kinds, nested; newlines, comments and a trailing comma", arguments: [
        ("v = [ 1, 2, 3 ]", "{v=[1,2,3]}"),
        ("v = [ \"red\", \"yellow\", \"green\" ]", #"{v=["red","yellow","green"]}"#),
        ("v = [ [ 1, 2 ], [3, 4, 5] ]", "{v=[[1,2],[3,4,5]]}"),
        ("v = [ [ 1, 2 ], [\"a\", \"b\", \"c\"] ]", #"{v=[[1,2],["a","b","c"]]}"#),
        ("v = [ \"all\", 'strings', \"\"\"are the same\"\"\", '''type''' ]", #"{v=["all","strings","are the same","type"]}"#),
        ("v = [ 0.1, 0.2, 0.5, 1, 2, 5 ]", "{v=[0.1,0.2,0.5,1,2,5]}"),
        ("v = [\n  \"Foo Bar <foo@example.com>\",\n  { name = \"Baz Qux\", email = \"bazqux@example.com\" }\n]", #"{v=["Foo Bar <foo@example.com>",{name="Baz Qux",email="bazqux@example.com"}]}"#),
        ("v = [\n  1, 2, 3\n]", "{v=[1,2,3]}"),
        ("v = [\n  1,\n  2, # this is ok\n]", "{v=[1,2]}"),
        ("v = []", "{v=[]}"),
        ("v = [ ]", "{v=[]}"),
        ("v = [\n]", "{v=[]}"),
        ("v = [1,]", "{v=[1]}"),
        ("v = [ # c\n 1 # c\n , # c\n 2 # c\n ] # c", "{v=[1,2]}"),
        ("v = [\r\n1,\r\n2\r\n]", "{v=[1,2]}"),
        ("v = [1979-05-27, 07:32:00, 1979-05-27T07:32:00Z]", "{v=[1979-05-27,07:32:00,1979-05-27T07:32:00Z]}"),
        ("v = [[]]", "{v=[[]]}"),
        ("v = [[], [[]], {}]", "{v=[[],[[]],{}]}"),
        ("v = [1, [2, [3, true]], 'x', 1.5, {a = 1}]", #"{v=[1,[2,[3,true]],"x",1.5,{a=1}]}"#),
        ("v = [\n\n\n1\n\n\n]", "{v=[1]}"),
    ])
    func arrayValid(_ document: String, _ expected: String) throws {
        try expectParse(document, expected)
    }

    @Test("arrays: commas between values, closed, no empty elements", arguments: [
        ("v = [1 2]", 1, #"expected ',' or ']' in an array, found "2""#),
        ("v = [,]", 1, #"expected a value, found ",""#),
        ("v = [1,,2]", 1, #"expected a value, found ",""#),
        ("v = [1", 1, "expected ',' or ']' in an array, found the end of the file"),
        ("v = [1,\n", 2, "expected a value, found the end of the file"),
        ("v = [\n1\n2\n]", 3, #"expected ',' or ']' in an array, found "2""#),
        ("v = [1 # ]", 1, "expected ',' or ']' in an array, found the end of the file"),
        ("v = [1, 2, # \u{1}\n]", 1, "U+0001"),
        ("v = [1; 2]", 1, #"expected ',' or ']' in an array, found ";""#),
        ("v = [1]\n[v]", 2, #""v" is already an array, not a table"#),
        ("v = [1\r2]", 1, "a carriage return must be followed by a line feed"),
    ])
    func arrayInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }

    @Test("tables: headers, dotted and quoted names, whitespace, implicit super-tables, sub-tables of dotted keys", arguments: [
        ("[table]", "{table={}}"),
        ("[table-1]\nkey1 = \"some string\"\nkey2 = 123\n\n[table-2]\nkey1 = \"another string\"\nkey2 = 456", #"{table-1={key1="some string",key2=123},table-2={key1="another string",key2=456}}"#),
        ("[dog.\"tater.man\"]\ntype.name = \"pug\"", #"{dog={"tater.man"={type={name="pug"}}}}"#),
        ("[a.b.c]\n[ d.e.f ]\n[ g .  h  . i ]\n[ j . \"ʞ\" . 'l' ]", #"{a={b={c={}}},d={e={f={}}},g={h={i={}}},j={"ʞ"={l={}}}}"#),
        ("[x.y.z.w]\n\n[x]", "{x={y={z={w={}}}}}"),
        ("[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n\n[fruit.apple.texture]\nsmooth = true", #"{fruit={apple={color="red",taste={sweet=true},texture={smooth=true}}}}"#),
        ("[fruit.apple]\n[animal]\n[fruit.orange]", "{fruit={apple={},orange={}},animal={}}"),
        ("name = \"Fido\"\nbreed = \"pug\"\n\n[owner]\nname = \"Regina Dogman\"\nmember_since = 1999-08-04", #"{name="Fido",breed="pug",owner={name="Regina Dogman",member_since=1999-08-04}}"#),
        ("[\"\"]\nv = 1", #"{""={v=1}}"#),
        ("[a.\"\".b]", #"{a={""={b={}}}}"#),
        ("  [a]  # indented, with a comment\n  v = 1", "{a={v=1}}"),
        ("[a]\n[a.b]\n[a.b.c]", "{a={b={c={}}}}"),
        ("a.b = 1\n[a.c]\nd = 2", "{a={b=1,c={d=2}}}"),
        ("[a.b.c]\n[a]\nb.d = 1", "{a={b={c={},d=1}}}"),
        ("[a]\n[b]\n[a.c]", "{a={c={}},b={}}"),
        ("[1979-05-27]\n[true]", "{1979-05-27={},true={}}"),
        ("[a]\n\"b.c\" = 1\nb.c = 2", #"{a={"b.c"=1,b={c=2}}}"#),
        ("[\t a \t]", "{a={}}"),
    ])
    func tableValid(_ document: String, _ expected: String) throws {
        try expectParse(document, expected)
    }

    @Test("tables: a name defined twice, by a header or dotted keys; malformed headers", arguments: [
        ("[fruit]\napple = \"red\"\n\n[fruit]\norange = \"orange\"", 4, #"the table "fruit" is defined twice"#),
        ("[fruit]\napple = \"red\"\n\n[fruit.apple]\ntexture = \"smooth\"", 4, #""fruit.apple" is already a string, not a table"#),
        ("[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n[fruit.apple]", 4, #"the table "fruit.apple" is defined twice: its dotted keys already defined it"#),
        ("[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n[fruit.apple.taste]", 4, "its dotted keys already defined it"),
        ("[a.b]\nc = 1\n[a]\nb.d = 2", 4, #"the table "a.b" is defined by its [header]; dotted keys cannot extend it"#),
        ("[]", 1, #"expected a key, found "]""#),
        ("[a", 1, "expected ']' to close the table header, found the end of the file"),
        ("[a.]", 1, #"expected a key, found "]""#),
        ("[.a]", 1, #"expected a key, found ".a""#),
        ("[a..b]", 1, #"expected a key, found ".b""#),
        ("[a b]", 1, #"expected ']' to close the table header, found "b""#),
        ("[a]b = 1", 1, #"expected the end of the line, found "b""#),
        ("[a] [b]", 1, #"expected the end of the line, found "[""#),
        ("[ [a] ]", 1, #"expected a key, found "[""#),
        ("[a]]", 1, #"expected the end of the line, found "]""#),
        ("[a\n]", 1, "expected ']' to close the table header, found the end of the line"),
        ("[\"a\nb\"]", 1, "unterminated string"),
        ("[a]\n[\"a\"]", 2, #"the table "a" is defined twice"#),
        ("[a]\n[ a ]", 2, #"the table "a" is defined twice"#),
        ("v = 1\n[v.w]", 2, #""v" is already an integer, not a table"#),
        ("[a.b]\nc = 1\n[a.b]", 3, #"the table "a.b" is defined twice"#),
    ])
    func tableInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }

    @Test("inline tables: one line, comma-separated, dotted keys, nested; newlines only inside values", arguments: [
        ("name = { first = \"Tom\", last = \"Preston-Werner\" }", #"{name={first="Tom",last="Preston-Werner"}}"#),
        ("point = { x = 1, y = 2 }", "{point={x=1,y=2}}"),
        ("animal = { type.name = \"pug\" }", #"{animal={type={name="pug"}}}"#),
        ("v = {}", "{v={}}"),
        ("v = { }", "{v={}}"),
        ("v = {a={b={c=1}}}", "{v={a={b={c=1}}}}"),
        ("v = {a.b = 1, a.c = 2}", "{v={a={b=1,c=2}}}"),
        ("v = { a = [ 1,\n 2 ] }", "{v={a=[1,2]}}"),
        ("v = { s = \"\"\"\nx\ny\"\"\" }", #"{v={s="x\#ny"}}"#),
        ("v = { a = [1, # c\n2] }", "{v={a=[1,2]}}"),
        ("v = {\"quoted key\" = 1, 'lit' = 2, \"\" = 3}", #"{v={"quoted key"=1,lit=2,""=3}}"#),
        ("v = [{a = 1}, {a = 2}]", "{v=[{a=1},{a=2}]}"),
        ("v = {a = 1}\nw = 2", "{v={a=1},w=2}"),
        ("[t]\nv = {a = 1}", "{t={v={a=1}}}"),
        ("v = {a = 1 ,b = 2}", "{v={a=1,b=2}}"),
        ("v = {\ta\t=\t1\t}", "{v={a=1}}"),
        ("v = {a = {}, b = []}", "{v={a={},b=[]}}"),
        ("v = {a.b.c = 1, a.b.d = 2, a.e = 3}", "{v={a={b={c=1,d=2},e=3}}}"),
        ("a = {b = 1}\nc = {b = 1}", "{a={b=1},c={b=1}}"),
    ])
    func inlineTableValid(_ document: String, _ expected: String) throws {
        try expectParse(document, expected)
    }

    @Test("inline tables: no trailing comma, no newline or comment between pairs, closed, immutable afterwards", arguments: [
        ("v = {a = 1,}", 1, "a trailing comma is not allowed in an inline table"),
        ("v = {,}", 1, #"expected a key, found ",""#),
        ("v = {a = 1 b = 2}", 1, #"expected ',' or '}' in an inline table, found "b""#),
        ("v = {a = 1,\nb = 2}", 1, "an inline table must be on one line"),
        ("v = {\na = 1}", 1, "an inline table must be on one line"),
        ("v = {a = 1\n}", 1, "an inline table must be on one line"),
        ("v = {a = 1\r\n}", 1, "an inline table must be on one line"),
        ("v = {a = 1 # c\n}", 1, "a comment is not allowed in an inline table"),
        ("v = {a = 1, a = 2}", 1, #""a" is defined twice"#),
        ("v = {a.b = 1, a.b = 2}", 1, #""a.b" is defined twice"#),
        ("v = {a = {b = 1}, a.c = 2}", 1, #""a" is an inline table and cannot be extended"#),
        ("v = {a = 1, a.b = 2}", 1, #""a" is already an integer, not a table"#),
        ("v = {a.b = 1, a = 2}", 1, #""a" is defined twice"#),
        ("v = {a = 1", 1, "expected ',' or '}' in an inline table, found the end of the file"),
        ("v = {a = 1}}", 1, #"expected the end of the line, found "}""#),
        ("v = {a}", 1, #"expected '=' after the key, found "}""#),
        ("[product]\ntype = { name = \"Nail\" }\ntype.edible = false", 3, #""product.type" is an inline table and cannot be extended"#),
        ("[product]\ntype.name = \"Nail\"\ntype = { edible = false }", 3, #""product.type" is defined twice"#),
        ("a = {}\n[a]", 2, #""a" is an inline table and cannot be extended"#),
        ("a = {b = {}}\n[a.b]", 2, #""a" is an inline table and cannot be extended"#),
        ("a = {b = 1}\n[[a.c]]", 2, #""a" is an inline table and cannot be extended"#),
    ])
    func inlineTableInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }

    @Test("arrays of tables: each [[header]] a new element, sub-tables and nested arrays in the latest", arguments: [
        ("[[products]]\nname = \"Hammer\"\nsku = 738594937\n\n[[products]]  # empty table within the array\n\n[[products]]\nname = \"Nail\"\nsku = 284758393\n\ncolor = \"gray\"", #"{products=[{name="Hammer",sku=738594937},{},{name="Nail",sku=284758393,color="gray"}]}"#),
        ("[[fruits]]\nname = \"apple\"\n\n[fruits.physical]  # subtable\ncolor = \"red\"\nshape = \"round\"\n\n[[fruits.varieties]]  # nested array of tables\nname = \"red delicious\"\n\n[[fruits.varieties]]\nname = \"granny smith\"\n\n\n[[fruits]]\nname = \"banana\"\n\n[[fruits.varieties]]\nname = \"plantain\"", #"{fruits=[{name="apple",physical={color="red",shape="round"},varieties=[{name="red delicious"},{name="granny smith"}]},{name="banana",varieties=[{name="plantain"}]}]}"#),
        ("[[a]]\n[[a]]", "{a=[{},{}]}"),
        ("[[a.b]]\n[a]", "{a={b=[{}]}}"),
        ("[[a]]\n[a.b]\nx = 1\n[[a]]\n[a.b]\nx = 2", "{a=[{b={x=1}},{b={x=2}}]}"),
        ("[[a]]\nb.c = 1\n[[a]]\nb.c = 2", "{a=[{b={c=1}},{b={c=2}}]}"),
        ("points = [ { x = 1, y = 2, z = 3 },\n           { x = 7, y = 8, z = 9 },\n           { x = 2, y = 4, z = 8 } ]", "{points=[{x=1,y=2,z=3},{x=7,y=8,z=9},{x=2,y=4,z=8}]}"),
        ("[[a]]\n[[a.b]]\n[[a.b]]\n[[a]]\n[[a.b]]", "{a=[{b=[{},{}]},{b=[{}]}]}"),
        ("[a]\n[[a.b]]\n[[a.b]]", "{a={b=[{},{}]}}"),
        ("[[ a ]]\n[[\ta . b\t]]", "{a=[{b=[{}]}]}"),
        ("[[a]]\nx = 1\n[b]\n[[a]]", "{a=[{x=1},{}],b={}}"),
        ("[[\"a.b\"]]\n[[a.b]]", #"{"a.b"=[{}],a={b=[{}]}}"#),
        ("a.b = 1\n[[a.c]]", "{a={b=1,c=[{}]}}"),
    ])
    func arrayOfTablesValid(_ document: String, _ expected: String) throws {
        try expectParse(document, expected)
    }

    @Test("arrays of tables: never a static array, never a table, parent element first; malformed headers", arguments: [
        ("[fruit.physical]\ncolor = \"red\"\nshape = \"round\"\n\n[[fruit]]\nname = \"apple\"", 5, #""fruit" is already a table, not an array of tables"#),
        ("fruits = []\n\n[[fruits]]", 3, #""fruits" is a static array; [[…]] cannot append to it"#),
        ("fruits = [{}]\n[[fruits]]", 2, #""fruits" is a static array"#),
        ("[[fruits]]\nname = \"apple\"\n\n[[fruits.varieties]]\nname = \"red delicious\"\n\n[fruits.varieties]\nname = \"granny smith\"", 7, #""fruits.varieties" is already an array of tables, not a table"#),
        ("[[fruits]]\n[fruits.physical]\ncolor = \"red\"\n\n[[fruits.physical]]\ncolor = \"green\"", 5, #""fruits.physical" is already a table, not an array of tables"#),
        ("[[a]]\n[a]", 2, #""a" is already an array of tables, not a table"#),
        ("[a]\n[[a]]", 2, #""a" is already a table, not an array of tables"#),
        ("a = 1\n[[a]]", 2, #""a" is already an integer, not an array of tables"#),
        ("[[a]", 1, "expected ']]' to close the array-of-tables header, found the end of the file"),
        ("[[a] ]", 1, #"expected ']]' to close the array-of-tables header, found " ""#),
        ("[[a]]]", 1, #"expected the end of the line, found "]""#),
        ("[[]]", 1, #"expected a key, found "]""#),
        ("[[a]]\nb = 1\nb = 2", 3, #""a.b" is defined twice"#),
        ("[[a]]\n[a.b]\n[a.b]", 3, #"the table "a.b" is defined twice"#),
        ("a = [{b = 1}]\n[a.c]", 2, #""a" is already an array, not a table"#),
        ("a = [{b = 1}]\na.c = 1", 2, #""a" is already an array, not a table"#),
        ("[[a]]\nb = {}\n[[a.b]]", 3, #""a.b" is already a table, not an array of tables"#),
    ])
    func arrayOfTablesInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }

    @Test("defined once: what may still be added to, and in what order", arguments: [
        ("[x.y.z.w]\n[x]", "{x={y={z={w={}}}}}"),
        ("[a.b]\n[a]\n[a.c]", "{a={b={},c={}}}"),
        ("a.b = 1\na.c = 2", "{a={b=1,c=2}}"),
        ("a.b.c = 1\na.b.d = 2\na.e = 3", "{a={b={c=1,d=2},e=3}}"),
        ("a.b = 1\n[a.c]", "{a={b=1,c={}}}"),
        ("[a]\nb.c = 1\n[a.b.d]", "{a={b={c=1,d={}}}}"),
        ("[[a]]\n[a.b]\n[[a]]\n[a.b]", "{a=[{b={}},{b={}}]}"),
        ("[[a]]\nb.c = 1\n[[a]]\nb.c = 1", "{a=[{b={c=1}},{b={c=1}}]}"),
        ("[a]\n\"b.c\" = 1\nb.c = 2", #"{a={"b.c"=1,b={c=2}}}"#),
        ("[a.b.c]\n[a]\nb.d = 1", "{a={b={c={},d=1}}}"),
        ("[a]\n[b]\n[a.c]", "{a={c={}},b={}}"),
        ("[a]\nb = {}\n[c]", "{a={b={}},c={}}"),
        ("[[a.b]]\n[a]", "{a={b=[{}]}}"),
        ("[a]\n[[a.b]]\n[[a.b]]", "{a={b=[{},{}]}}"),
        ("a = 1\nb = 1\n[c]\na = 1", "{a=1,b=1,c={a=1}}"),
        ("[a.b]\nx = 1\n[a.c]\nx = 1\n[a]\nx = 1", "{a={b={x=1},c={x=1},x=1}}"),
    ])
    func definedOnceValid(_ document: String, _ expected: String) throws {
        try expectParse(document, expected)
    }

    @Test("defined twice: every way TOML 1.0.0 forbids", arguments: [
        ("a = 1\na = 2", 2, #""a" is defined twice"#),
        ("a = 1\n\"a\" = 2", 2, #""a" is defined twice"#),
        ("a = 1\n'a' = 2", 2, #""a" is defined twice"#),
        ("a = 1 # comment\n  a = 2", 2, #""a" is defined twice"#),
        ("a.b = 1\na.b = 2", 2, #""a.b" is defined twice"#),
        ("a = 1\na.b = 2", 2, #""a" is already an integer, not a table"#),
        ("a.b = 1\na = 2", 2, #""a" is defined twice"#),
        ("a.b = 1\na = {c = 2}", 2, #""a" is defined twice"#),
        ("[a]\n[a]", 2, #"the table "a" is defined twice"#),
        ("[a.b]\n[a.b]", 2, #"the table "a.b" is defined twice"#),
        ("[a]\nx = 1\n[b]\n[a]", 4, #"the table "a" is defined twice"#),
        ("[a]\nb = 1\n[a]\nc = 2", 3, #"the table "a" is defined twice"#),
        ("[a]\nb = 1\n[a.b]", 3, #""a.b" is already an integer, not a table"#),
        ("a.b = 1\n[a]", 2, #"the table "a" is defined twice: its dotted keys already defined it"#),
        ("a.b.c = 1\n[a.b]", 2, #"the table "a.b" is defined twice: its dotted keys already defined it"#),
        ("[a]\nb.c = 1\n[a.b]", 3, #"the table "a.b" is defined twice: its dotted keys already defined it"#),
        ("[a.b]\n[a]\nb.c = 1", 3, #"the table "a.b" is defined by its [header]; dotted keys cannot extend it"#),
        ("[a.b.c]\n[a]\nb = 1", 3, #""a.b" is defined twice"#),
        ("[a]\nb.c = 1\n[a.b.c]", 3, #""a.b.c" is already an integer, not a table"#),
        ("a = {}\na.b = 1", 2, #""a" is an inline table and cannot be extended"#),
        ("a = {b = 1}\n[a]", 2, #""a" is an inline table and cannot be extended"#),
        ("a = {b = 1}\n[a.c]", 2, #""a" is an inline table and cannot be extended"#),
        ("a = {b.c = 1}\na.b.d = 2", 2, #""a" is an inline table and cannot be extended"#),
        ("a = []\n[[a]]", 2, #""a" is a static array; [[…]] cannot append to it"#),
        ("a = [1]\na.b = 2", 2, #""a" is already an array, not a table"#),
        ("[[a]]\n[a]", 2, #""a" is already an array of tables, not a table"#),
        ("[a]\n[[a]]", 2, #""a" is already a table, not an array of tables"#),
        ("[[a]]\n[[a.b]]\n[a.b]", 3, #""a.b" is already an array of tables, not a table"#),
        ("[[a.b]]\n[a]\nb.c = 1", 3, #""a.b" is already an array of tables; dotted keys cannot extend it"#),
        ("[[t]]\na = 1\na = 2", 3, #""t.a" is defined twice"#),
        ("v = {a = 1, a = 2}", 1, #""a" is defined twice"#),
        ("v = {a.b = 1, a = 2}", 1, #""a" is defined twice"#),
    ])
    func definedTwiceInvalid(_ document: String, _ line: Int, _ fragment: String) {
        TOMLCheck.expectInvalid(document, line: line, fragment)
    }
}
