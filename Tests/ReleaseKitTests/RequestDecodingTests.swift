import Foundation
import ReleaseKit
import Testing

/// Strict decoding of request files: what is accepted, and for everything else a rejection
/// whose message names the field (the daemon trusts nothing in the spool).
@Suite("request decoding")
struct RequestDecodingTests {
    static let id = "01JDQ8K3ZP6V4TQX2M9B7C5N1R"

    /// A request as JSON text: the valid base fields, with some replaced (nil removes one) and
    /// some added, in a fixed order.
    static func json(_ changes: KeyValuePairs<String, String?> = [:]) -> String {
        var fields: [(String, String)] = [
            ("version", "1"), ("id", "\"\(id)\""), ("app", "\"shop\""), ("release", "\"v42\""),
            ("directory", "\"/srv/apps/shop/v42\""),
        ]
        for (key, value) in changes {
            if let i = fields.firstIndex(where: { $0.0 == key }) {
                if let value { fields[i].1 = value } else { fields.remove(at: i) }
            } else if let value {
                fields.append((key, value))
            }
        }
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }

    static func decode(_ text: String) throws(RejectReason) -> ReleaseRequest {
        var partial = ReleaseRequest.Partial()
        return try ReleaseRequest.decode(Array(text.utf8), partial: &partial)
    }

    // MARK: Accepted

    @Test("a minimal request: env defaults to {}, tasks to none")
    func minimal() throws {
        let r = try Self.decode(Self.json())
        #expect(r.id.rawValue == Self.id)
        #expect(r.app == "shop")
        #expect(r.release == "v42")
        #expect(r.directory == "/srv/apps/shop/v42")
        #expect(r.env == [:])
        #expect(r.tasks == nil)
        #expect(r.submittedAt == nil)
        #expect(r.retryOf == nil)
    }

    @Test("every field, and null for the optional ones")
    func full() throws {
        let r = try Self.decode(Self.json([
            "env": #"{"RUN_MIGRATIONS_DURING_RELEASE": "true", "EMPTY": "", "_X1": "é\n\"q\""}"#,
            "tasks": #"["migrate", "seed"]"#,
            "submittedAt": #""2026-11-25T13:00:00.123Z""#,
            "retryOf": #""01JDQ8K3ZP6V4TQX2M9B7C5N1Q""#,
        ]))
        #expect(r.env == ["RUN_MIGRATIONS_DURING_RELEASE": "true", "EMPTY": "", "_X1": "é\n\"q\""])
        #expect(r.tasks == ["migrate", "seed"])
        #expect(r.submittedAt == Timestamp.parse("2026-11-25T13:00:00.123Z"))
        #expect(r.submittedAt.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } == 1_795_611_600_123)
        #expect(r.retryOf?.rawValue == "01JDQ8K3ZP6V4TQX2M9B7C5N1Q")
        let nulls = try Self.decode(Self.json(["env": "null", "tasks": "null", "submittedAt": "null", "retryOf": "null"]))
        #expect(nulls.env == [:] && nulls.tasks == nil && nulls.submittedAt == nil && nulls.retryOf == nil)
        #expect(try Self.decode(Self.json(["tasks": "[]"])).tasks == [], "an empty list is kept (it runs nothing)")
    }

    @Test("RFC 3339 times with and without fractional seconds, and with an offset",
          arguments: ["2026-11-25T13:00:00Z", "2026-11-25T13:00:00.5Z", "2026-11-25T14:00:00+01:00"])
    func submittedAtForms(_ time: String) throws {
        let r = try Self.decode(Self.json(["submittedAt": "\"\(time)\""]))
        let seconds = try #require(r.submittedAt).timeIntervalSince1970
        #expect(seconds >= 1_795_611_600 && seconds <= 1_795_611_601)
    }

    @Test("times are whole milliseconds and read back as written, in any year (found by the fuzzer: 8448-…T13:00:00.123Z)",
          arguments: ["2026-11-25T13:00:00.123Z", "8448-11-25T13:00:00.123Z", "9999-12-31T23:59:59.999Z",
                      "1969-12-31T23:59:59.999Z", "1900-01-01T00:00:00.001Z", "2026-11-25T13:00:00.000Z"])
    func timestampRoundTrip(_ time: String) throws {
        let date = try #require(Timestamp.parse(time))
        #expect(Timestamp.format(date) == time)
        #expect(Timestamp.parse(Timestamp.format(date)) == date)
    }

    @Test("a finer fraction is rounded to the nearest millisecond")
    func timestampRounding() throws {
        #expect(Timestamp.parse("2026-11-25T13:00:00.1236Z").map(Timestamp.format) == "2026-11-25T13:00:00.124Z")
        #expect(Timestamp.parse("2026-11-25T13:00:00Z").map(Timestamp.format) == "2026-11-25T13:00:00.000Z")
    }

    @Test("version 1.0 is version 1; whitespace and key order do not matter")
    func lenientJSONForms() throws {
        #expect(try Self.decode(Self.json(["version": "1.0"])).app == "shop")
        let reordered = "\n{ \"directory\" : \"/d\",\n\t\"release\":\"r\", \"app\":\"a\", \"id\":\"\(Self.id)\", \"version\":1 }\n"
        #expect(try Self.decode(reordered).directory == "/d")
    }

    @Test("encoded() decodes back to the same request")
    func roundTrip() throws {
        let request = ReleaseRequest(
            id: ReleaseID.generate(), app: "shop-2", release: "v42 (hotfix) ✓", directory: "/srv/apps/shop/v42",
            env: ["A": "1", "DATABASE_URL": "postgres://u:p@h/db", "MULTI": "a\nb"], tasks: ["migrate"],
            submittedAt: Timestamp.parse("2026-11-25T13:00:00.123Z"), retryOf: ReleaseID.generate())
        var partial = ReleaseRequest.Partial()
        #expect(try ReleaseRequest.decode(request.encoded(), partial: &partial) == request)
        let text = String(decoding: request.encoded(), as: UTF8.self)
        #expect(text.hasSuffix("}\n"))
        #expect(text.contains(#""directory" : "/srv/apps/shop/v42""#), "slashes are not escaped: \(text)")
    }

    // MARK: Rejected

    struct Case: Sendable, CustomTestStringConvertible {
        var json: String
        var code: RejectReason.Code
        var message: String
        var testDescription: String { message }
    }

    static let cases: [Case] = [
        // The shape of the document
        Case(json: "[]", code: .schema, message: "the request must be a JSON object, not an array"),
        Case(json: "\"text\"", code: .schema, message: "the request must be a JSON object, not a string"),
        Case(json: "null", code: .schema, message: "the request must be a JSON object, not null"),
        // Unknown fields, however close to a real one
        Case(json: json(["extra": "true"]), code: .schema, message: #"unknown field "extra" in the request"#),
        Case(json: json(["Env": "{}"]), code: .schema, message: #"unknown field "Env" in the request"#),
        Case(json: json(["submitted_at": "\"x\""]), code: .schema, message: #"unknown field "submitted_at" in the request"#),
        // version
        Case(json: json(["version": nil]), code: .schema, message: #"the request has no "version""#),
        Case(json: json(["version": "\"1\""]), code: .schema, message: #""version" must be a number, not a string"#),
        Case(json: json(["version": "true"]), code: .schema, message: #""version" must be a number, not a boolean"#),
        Case(json: json(["version": "null"]), code: .schema, message: #""version" must be a number, not null"#),
        Case(json: json(["version": "2"]), code: .schema, message: "unsupported request version 2 (this daemon reads version 1)"),
        Case(json: json(["version": "1.5"]), code: .schema, message: "unsupported request version 1.5 (this daemon reads version 1)"),
        // id
        Case(json: json(["id": nil]), code: .schema, message: #"the request has no "id""#),
        Case(json: json(["id": "null"]), code: .schema, message: #"the request has no "id""#),
        Case(json: json(["id": "42"]), code: .schema, message: #""id" must be a string, not a number"#),
        Case(json: json(["id": "\"abc\""]), code: .schema, message: #""id" "abc" is not a ULID (26 characters of Crockford base32)"#),
        Case(json: json(["id": "\"01jdq8k3zp6v4tqx2m9b7c5n1r\""]), code: .schema,
             message: #""id" "01jdq8k3zp6v4tqx2m9b7c5n1r" is not a ULID (26 characters of Crockford base32)"#),
        Case(json: json(["id": "\"../../etc/passwd\""]), code: .schema,
             message: #""id" "../../etc/passwd" is not a ULID (26 characters of Crockford base32)"#),
        // app
        Case(json: json(["app": nil]), code: .schema, message: #"the request has no "app""#),
        Case(json: json(["app": "[\"shop\"]"]), code: .schema, message: #""app" must be a string, not an array"#),
        Case(json: json(["app": "\"Shop\""]), code: .schema, message: #""app" "Shop" is not a valid app name ([a-z0-9][a-z0-9-]{0,62})"#),
        Case(json: json(["app": "\"-shop\""]), code: .schema, message: #""app" "-shop" is not a valid app name ([a-z0-9][a-z0-9-]{0,62})"#),
        Case(json: json(["app": "\"shop_1\""]), code: .schema, message: #""app" "shop_1" is not a valid app name ([a-z0-9][a-z0-9-]{0,62})"#),
        Case(json: json(["app": "\"\""]), code: .schema, message: #""app" "" is not a valid app name ([a-z0-9][a-z0-9-]{0,62})"#),
        Case(json: json(["app": "\"../x\""]), code: .schema, message: #""app" "../x" is not a valid app name ([a-z0-9][a-z0-9-]{0,62})"#),
        Case(json: json(["app": "\"\(String(repeating: "a", count: 64))\""]), code: .schema,
             message: "\"app\" \"\(String(repeating: "a", count: 60))…\" is not a valid app name ([a-z0-9][a-z0-9-]{0,62})"),
        // release
        Case(json: json(["release": nil]), code: .schema, message: #"the request has no "release""#),
        Case(json: json(["release": "42"]), code: .schema, message: #""release" must be a string, not a number"#),
        Case(json: json(["release": "\"\""]), code: .schema, message: #""release" "" must be 1 to 128 printable characters"#),
        Case(json: json(["release": "\"v1\\nv2\""]), code: .schema, message: #""release" "v1\nv2" must be 1 to 128 printable characters"#),
        Case(json: json(["release": "\"\(String(repeating: "r", count: 129))\""]), code: .schema,
             message: "\"release\" \"\(String(repeating: "r", count: 60))…\" must be 1 to 128 printable characters"),
        // directory
        Case(json: json(["directory": nil]), code: .schema, message: #"the request has no "directory""#),
        Case(json: json(["directory": "{}"]), code: .schema, message: #""directory" must be a string, not an object"#),
        // env
        Case(json: json(["env": "[]"]), code: .schema, message: #""env" must be an object of strings, not an array"#),
        Case(json: json(["env": "\"A=1\""]), code: .schema, message: #""env" must be an object of strings, not a string"#),
        Case(json: json(["env": #"{"A": 1}"#]), code: .env, message: #""env".A must be a string, not a number"#),
        Case(json: json(["env": #"{"A": true}"#]), code: .env, message: #""env".A must be a string, not a boolean"#),
        Case(json: json(["env": #"{"A": null}"#]), code: .env, message: #""env".A must be a string, not null"#),
        Case(json: json(["env": #"{"A=B": "1"}"#]), code: .env, message: #""env" has a variable name with '=' in it ("A=B")"#),
        Case(json: json(["env": #"{"A\u0000B": "1"}"#]), code: .env, message: #""env" has a variable name with a NUL byte"#),
        Case(json: json(["env": #"{"": "1"}"#]), code: .env, message: #""env" has an empty variable name"#),
        Case(json: json(["env": #"{"1A": "1"}"#]), code: .env,
             message: #""env" has an invalid variable name "1A" (letters, digits and _ only, not starting with a digit)"#),
        Case(json: json(["env": #"{"MY-VAR": "1"}"#]), code: .env,
             message: #""env" has an invalid variable name "MY-VAR" (letters, digits and _ only, not starting with a digit)"#),
        Case(json: json(["env": #"{"A": "x\u0000y"}"#]), code: .env, message: #""env".A contains a NUL byte"#),
        // tasks
        Case(json: json(["tasks": "\"migrate\""]), code: .schema, message: #""tasks" must be an array of task names, not a string"#),
        Case(json: json(["tasks": "[\"migrate\", 2]"]), code: .schema, message: #""tasks" must be an array of task names, found a number"#),
        // submittedAt, retryOf
        Case(json: json(["submittedAt": "\"yesterday\""]), code: .schema, message: #""submittedAt" "yesterday" is not an RFC 3339 time"#),
        Case(json: json(["submittedAt": "\"2026-11-25 13:00:00\""]), code: .schema,
             message: #""submittedAt" "2026-11-25 13:00:00" is not an RFC 3339 time"#),
        Case(json: json(["submittedAt": "1764075600"]), code: .schema, message: #""submittedAt" must be a string, not a number"#),
        Case(json: json(["retryOf": "\"nope\""]), code: .schema, message: #""retryOf" "nope" is not a release id"#),
        Case(json: json(["retryOf": "[]"]), code: .schema, message: #""retryOf" must be a string, not an array"#),
    ]

    @Test("each invalid request is rejected with a code and a message naming the field", arguments: cases)
    func rejected(_ c: Case) {
        let error = #expect(throws: RejectReason.self) { try Self.decode(c.json) }
        #expect(error?.code == c.code, "\(c.json)")
        #expect(error?.message == c.message, "\(c.json)")
    }

    @Test("text that is not JSON is invalid-json, saying where",
          arguments: ["", "{", "{\"version\": 1,", "{version: 1}", "{\"a\": 'b'}", "{\"a\": 1} trailing", "{\"a\": 01}"])
    func invalidJSON(_ text: String) {
        let error = #expect(throws: RejectReason.self) { try Self.decode(text) }
        #expect(error?.code == .invalidJSON)
        #expect(error?.message.hasPrefix("the request is not valid JSON: ") == true, "\(String(describing: error))")
        #expect((error?.message.count ?? 0) > "the request is not valid JSON: ".count, "the parser's own words follow")
    }

    @Test("bytes that are not UTF-8 are invalid-utf8, whatever else they hold",
          arguments: [[0xFF], [0xC3, 0x28], [0xED, 0xA0, 0x80], Array("{\"app\": \"sh".utf8) + [0xFE] + Array("op\"}".utf8)])
    func invalidUTF8(_ bytes: [UInt8]) {
        var partial = ReleaseRequest.Partial()
        let error = #expect(throws: RejectReason.self) { try ReleaseRequest.decode(bytes, partial: &partial) }
        #expect(error?.code == .invalidUTF8)
        #expect(error?.message == "the request is not valid UTF-8")
        #expect(partial.app == nil)
    }

    @Test("a rejected request still yields what could be read, for its record")
    func partialOfRejected() {
        var partial = ReleaseRequest.Partial()
        let text = Self.json(["app": "\"Bad_App\"", "submittedAt": "\"2026-11-25T13:00:00Z\"", "retryOf": "\"01JDQ8K3ZP6V4TQX2M9B7C5N1Q\"",
                              "surprise": "1"])
        #expect(throws: RejectReason.self) { try ReleaseRequest.decode(Array(text.utf8), partial: &partial) }
        #expect(partial.id == Self.id)
        #expect(partial.app == "Bad_App")
        #expect(partial.release == "v42")
        #expect(partial.submittedAt == Timestamp.parse("2026-11-25T13:00:00Z"))
        #expect(partial.retryOf == "01JDQ8K3ZP6V4TQX2M9B7C5N1Q")

        var none = ReleaseRequest.Partial()
        #expect(throws: RejectReason.self) { try ReleaseRequest.decode(Array(#"{"app": 5, "release": ["x"]}"#.utf8), partial: &none) }
        #expect(none.id == nil && none.app == nil && none.release == nil, "values of the wrong type are not taken")
    }

    @Test("the syntax rules the CLI shares: app names, release labels, env keys")
    func syntax() {
        for ok in ["a", "0", "shop", "shop-2", "a-", String(repeating: "a", count: 63)] { #expect(Syntax.isValidAppName(ok), "\(ok)") }
        for bad in ["", "-a", "A", "sh op", "shop_", "shöp", String(repeating: "a", count: 64)] { #expect(!Syntax.isValidAppName(bad), "\(bad)") }
        for ok in ["v1", "v42 (hotfix)", "é", String(repeating: "r", count: 128)] { #expect(Syntax.isValidReleaseLabel(ok), "\(ok)") }
        for bad in ["", "a\tb", "a\u{7f}", String(repeating: "r", count: 129)] { #expect(!Syntax.isValidReleaseLabel(bad), "\(bad)") }
        for ok in ["A", "_", "a_1", "PATH", String(repeating: "K", count: 255)] { #expect(Syntax.envKeyProblem(ok) == nil, "\(ok)") }
        for bad in ["", "1A", "A-B", "A B", "A=B", "A\u{0}", "É", String(repeating: "K", count: 256)] {
            #expect(Syntax.envKeyProblem(bad) != nil, "\(bad)")
        }
    }
}
