import FoundationEssentials
import Testing
@testable import ReleaseKit
@testable import ReleasePlugins

/// The notify task's pure parts: the webhook URLs it accepts, how it shows them, its signature,
/// its payload line, its variables.
@Suite("notify task")
struct NotifyTaskTests {
    @Test("URLs that parse: http(s), host names, IPv4 and IPv6, ports 1–65535, paths and queries", arguments: [
        ("http://127.0.0.1:8080/hook", "127.0.0.1", 8080),
        ("HTTPS://hooks.slack.com/services/T0/B0/XyZ", "hooks.slack.com", nil),
        ("https://user:p%40ss@example.com:65535/x?y=1#z", "example.com", 65535),
        ("http://[::1]:1/", "::1", 1),
        ("http://[2001:db8::7]/a", "2001:db8::7", nil),
        ("http://localhost", "localhost", nil),
        ("http://my_host.internal:443", "my_host.internal", 443),
    ] as [(String, String, Int?)])
    func validURLs(_ text: String, _ host: String, _ port: Int?) throws {
        let url = try WebhookURL.parse(text)
        #expect(url.host == host)
        #expect(url.port == port)
        #expect(url.scheme == (text.lowercased().hasPrefix("https") ? "https" : "http"))
    }

    @Test("URLs refused, each saying why", arguments: [
        ("http://127.0.0.1:70000/", "port"), ("http://localhost:0/", "port"), ("http://h:-1/", "port"), ("http://h:+80/", "port"),
        ("http://h:99999999999999999999999/", "port"), ("http://h:/", "empty port"), ("http://:80/", "no host"), ("http:///x", "no host"),
        ("ftp://h/", "not an http"), ("h:80", "not an http"), ("", "empty"), ("http://exa mple.com/", "space"),
        ("http://h/\u{7}", "control"), ("http://bücher.example/", "non-ASCII"), ("http://[::1/", "closing ]"),
        ("http://[zz::1]/", "IPv6"), ("http://h..x/", "malformed host"), ("http://-h/", "malformed host"),
        ("http://h/pa th", "space"), ("http://h/<x>", "path or query"), ("http://us er@h/", "space"), ("http://u\"@h/", "user part"),
    ])
    func invalidURLs(_ text: String, _ why: String) {
        #expect {
            try WebhookURL.parse(text)
        } throws: { error in
            "\(error)".contains(why)
        }
    }

    @Test("a URL is shown with scheme, host and port only")
    func redaction() {
        #expect(WebhookURL.redact("https://user:secret@hooks.example.com:8443/T0/secret-path?token=abc") == "https://hooks.example.com:8443/…")
        #expect(WebhookURL.redact("http://h") == "http://h")
        #expect(WebhookURL.redact("not a url") == "<not a URL>")
        #expect(WebhookURL.redact("http://h\u{1}x/") == "http://h?x/…", "control characters never reach a message")
    }

    @Test("RELEASE_NOTIFY_URL is checked at intake: a bad URL or too many reject the release")
    func validation() throws {
        try NotifyTask.validate(env: ["RELEASE_NOTIFY_URL": "http://a.example/, https://b.example/x"])
        #expect(throws: RejectReason.self) { try NotifyTask.validate(env: ["RELEASE_NOTIFY_URL": "http://ok/, http://h:70000/"]) }
        let many = (0...NotifyTask.maximumURLs).map { "http://h\($0)/" }.joined(separator: ",")
        #expect(throws: RejectReason.self) { try NotifyTask.validate(env: ["RELEASE_NOTIFY_URL": many]) }
        #expect(NotifyTask.knownProblem(env: [:]) == "RELEASE_NOTIFY_URL is not set")
        #expect(NotifyTask.knownProblem(env: ["RELEASE_NOTIFY_URL": "http://h/"]) == nil)
    }

    @Test("the signature is HMAC-SHA256 of the body, as GitHub signs (RFC 4231 test case 2)")
    func signature() {
        #expect(NotifyTask.signature(body: Array("what do ya want for nothing?".utf8), secret: "Jefe")
                == "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test("the chat line names the outcome, the reason, the duration and the tasks that ran")
    func text() {
        var record = ReleaseRecord(id: "x", app: "shop", release: "v42", state: .failed, reason: "migrate exited with status 1")
        record.durationMs = 5100
        record.tasks = [TaskRecord(name: "migrate", state: .failed), TaskRecord(name: "seed", state: .skipped),
                        TaskRecord(name: "notify", state: .running)]
        #expect(NotifyTask.text(for: record) == "shop v42: release failed (migrate exited with status 1) in 5.1s — migrate failed")
    }

    @Test("RELEASE_NOTIFY_REQUIRED decides whether a notify failure fails the release; a typo in it rejects")
    func required() throws {
        #expect(try NotifyTask.failureFailsRelease(env: ["RELEASE_NOTIFY_REQUIRED": "yes"]))
        #expect(try !NotifyTask.failureFailsRelease(env: [:]))
        #expect(throws: RejectReason.self) { try NotifyTask.failureFailsRelease(env: ["RELEASE_NOTIFY_REQUIRED": "ture"]) }
    }

    @Test("the timeout: default, parsed, bounded; a bad one falls back with a note")
    func timeout() {
        #expect(NotifyTask.timeout(in: [:]).timeout == .seconds(10))
        #expect(NotifyTask.timeout(in: ["RELEASE_NOTIFY_TIMEOUT": "500ms"]).timeout == .milliseconds(500))
        #expect(NotifyTask.timeout(in: ["RELEASE_NOTIFY_TIMEOUT": "1h"]).timeout == NotifyTask.maximumTimeout)
        let bad = NotifyTask.timeout(in: ["RELEASE_NOTIFY_TIMEOUT": "soon"])
        #expect(bad.timeout == .seconds(10) && bad.problem?.contains("is not a duration") == true)
    }
}
