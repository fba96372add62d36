import Crypto
import Foundation
import ReleaseKit
import Testing

/// The notify task against real HTTP servers on 127.0.0.1: signatures a receiver can verify,
/// retries, several URLs, timeouts, and reports for failed and cancelled releases.
@Suite("notify webhooks", .serialized)
struct NotifyTests {
    /// What a receiver does (as for GitHub webhooks): HMAC-SHA256 of the raw body with the
    /// shared secret, hex, prefixed with `sha256=`.
    static func expectedSignature(_ body: Data, secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))
        return "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    static func notifyEnv(_ urls: String, _ extra: [String: String] = [:]) -> [String: String] {
        ["NOTIFY_DURING_RELEASE": "true", "RELEASE_NOTIFY_URL": urls].merging(extra) { $1 }
    }

    @Test("a signed body the receiver verifies with the shared secret; a 503 is retried, then 200")
    func signedWithRetry() async throws {
        let server = try await WebhookServer(statuses: [503])
        let daemon = try await DaemonProcess()
        let app = try AppFixture(commands: ["migrate": "echo migrated"])
        defer { app.remove() }
        let secret = "whsec_0123456789"
        let r = try await daemon.submitWait(app: "shop", release: "v42", dir: app.path, env: Self.notifyEnv(server.url, [
            "RUN_MIGRATIONS_DURING_RELEASE": "true", "RELEASE_NOTIFY_SECRET": secret,
        ]))
        #expect(r.status == 0, "\(r)")
        let id = r.lines[0]
        let shown = "http://127.0.0.1:\(server.port)/…"
        #expect(r.stdout.contains("       POST \(shown) → 503 ("), "\(r)")
        #expect(r.stdout.contains("       retrying in 500ms (attempt 2 of 3)"))
        #expect(r.stdout.contains("       POST \(shown) → 200 ("))
        #expect(!r.stdout.contains(secret), "the secret never shows")

        let posts = server.received
        #expect(posts.count == 2, "one 503, one 200")
        for post in posts {
            let header = try #require(post.headers["x-releasectl-signature"])
            #expect(header == Self.expectedSignature(post.body, secret: secret), "the receiver's HMAC matches")
            #expect(header != Self.expectedSignature(post.body, secret: secret + "x"), "and a wrong secret does not")
            #expect(post.headers["x-releasectl-event"] == "release.succeeded")
            #expect(post.headers["x-releasectl-release-id"] == id)
            #expect(post.uri == "/hook")
        }
        #expect(posts[0].body == posts[1].body, "a retry sends the same body")
        let json = try #require(posts[1].json)
        #expect(json["id"] as? String == id)
        #expect(json["state"] as? String == "succeeded")
        #expect(json["durationMs"] is Int && json["finishedAt"] is String, "the report says how long the release took")
        let text = try #require(json["text"] as? String)
        #expect(text.hasPrefix("shop v42: release succeeded in "), "Slack-compatible text: \(text)")
        #expect(text.hasSuffix(" — migrate succeeded"))

        let record = try #require(try daemon.record(id))
        #expect(record.tasks.last?.name == "notify")
        #expect(record.tasks.last?.state == .succeeded)
        #expect(record.warnings.isEmpty)
        // Without a secret there is no signature header.
        let unsigned = try await daemon.submitWait(app: "shop", dir: app.path, env: Self.notifyEnv(server.url))
        #expect(unsigned.status == 0)
        #expect(server.received.last?.headers["x-releasectl-signature"] == nil)
        await daemon.cleanUp()
        await server.shutdown()
    }

    @Test("several URLs, comma-separated: each gets the report")
    func severalURLs() async throws {
        let a = try await WebhookServer()
        let b = try await WebhookServer()
        let c = try await WebhookServer()
        let daemon = try await DaemonProcess()
        let app = try AppFixture()
        defer { app.remove() }
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: Self.notifyEnv(" \(a.url), \(b.url),,\(c.url) ", [
            "RELEASE_NOTIFY_SECRET": "k",
        ]))
        #expect(r.status == 0, "\(r)")
        for server in [a, b, c] {
            #expect(server.received.count == 1, "port \(server.port)")
            let post = try #require(server.received.first)
            #expect(post.headers["x-releasectl-signature"] == Self.expectedSignature(post.body, secret: "k"))
            #expect(post.json?["id"] as? String == r.lines[0])
        }
        await daemon.cleanUp()
        for server in [a, b, c] { await server.shutdown() }
    }

    @Test("a cancelled release is reported as cancelled")
    func cancelled() async throws {
        let server = try await WebhookServer()
        let daemon = try await DaemonProcess()
        let app = try AppFixture(commands: ["migrate": "echo started; sleep 30", "seed": "echo seeding"])
        defer { app.remove() }
        let id = try await daemon.submit(app: "shop", release: "v9", dir: app.path, env: Self.notifyEnv(server.url, [
            "RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true",
        ]))
        try await daemon.waitForTaskOutput(id, "started")
        let cancel = try await daemon.ctl(["cancel", id])
        #expect(cancel.status == 0, "\(cancel)")
        let record = try await daemon.waitForRecord(id)
        #expect(record.state == .cancelled)
        #expect(record.tasks.first { $0.name == "seed" }?.state == .notRun)
        #expect(record.tasks.last?.state == .succeeded, "notify still runs after a cancel")
        let post = try #require(server.received.first)
        #expect(post.headers["x-releasectl-event"] == "release.cancelled")
        let json = try #require(post.json)
        #expect(json["state"] as? String == "cancelled")
        #expect((json["text"] as? String)?.hasPrefix("shop v9: release cancelled (cancelled by releasectl cancel)") == true)
        await daemon.cleanUp()
        await server.shutdown()
    }

    @Test("a notify failure is a warning (3 tries on 5xx, none more on 4xx) unless RELEASE_NOTIFY_REQUIRED is on")
    func failureIsWarning() async throws {
        let server = try await WebhookServer(statuses: [500, 500, 500, 404, 502, 502, 502])
        let daemon = try await DaemonProcess()
        let app = try AppFixture()
        defer { app.remove() }
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: Self.notifyEnv(server.url))
        #expect(r.status == 0, "the release itself succeeded: \(r)")
        #expect(server.received.count == 3, "up to 3 tries")
        let record = try #require(try daemon.record(r.lines[0]))
        #expect(record.state == .succeeded)
        #expect(record.tasks.last?.state == .failed)
        let problem = "POST http://127.0.0.1:\(server.port)/… answered 500 Internal Server Error"
        #expect(record.warnings == ["notify failed: \(problem) (set RELEASE_NOTIFY_REQUIRED=true to fail the release)"])

        let client = try await daemon.submitWait(app: "shop", dir: app.path, env: Self.notifyEnv(server.url))
        #expect(client.status == 0)
        #expect(server.received.count == 4, "a 4xx is not retried")

        let required = try await daemon.submitWait(app: "shop", dir: app.path, env: Self.notifyEnv(server.url, [
            "RELEASE_NOTIFY_REQUIRED": "true",
        ]))
        #expect(required.status == 1, "\(required)")
        let failed = try #require(try daemon.record(required.lines[0]))
        #expect(failed.state == .failed)
        #expect(failed.reason == "notify POST http://127.0.0.1:\(server.port)/… answered 502 Bad Gateway")
        #expect(server.received.count == 7)
        await daemon.cleanUp()
        await server.shutdown()
    }

    @Test("network errors are retried; RELEASE_NOTIFY_TIMEOUT bounds each request")
    func networkErrorsAndTimeout() async throws {
        let silent = try SilentListener()
        defer { silent.close() }
        let refused = "http://127.0.0.1:\(try closedPort())/hook"
        let daemon = try await DaemonProcess()
        let app = try AppFixture()
        defer { app.remove() }
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: Self.notifyEnv("\(refused),\(silent.url)", [
            "RELEASE_NOTIFY_TIMEOUT": "300ms",
        ]))
        #expect(r.status == 0, "\(r)")
        let posts = r.lines.filter { $0.hasPrefix("       POST ") }
        #expect(posts.count == 6, "3 tries for each URL: \(r)")
        #expect(r.lines.filter { $0.hasPrefix("       retrying in ") }.count == 4)
        let record = try #require(try daemon.record(r.lines[0]))
        let notify = try #require(record.tasks.last)
        #expect(notify.state == .failed)
        // 3 × 300ms of waiting on the silent URL, plus 2 × 1.5s of backoff; far from 3 × 10s.
        let ms = try #require(notify.durationMs)
        #expect(ms >= 3_900 && ms < 12_000, "notify took \(ms) ms")
        #expect(record.warnings.count == 1)
        // A bad timeout value is said, and the default used.
        let server = try await WebhookServer()
        let bad = try await daemon.submitWait(app: "shop", dir: app.path, env: Self.notifyEnv(server.url, ["RELEASE_NOTIFY_TIMEOUT": "soon"]))
        #expect(bad.status == 0)
        #expect(bad.stdout.contains("       RELEASE_NOTIFY_TIMEOUT=\"soon\" is not a duration (e.g. 5s, 500ms); using 10s"), "\(bad)")
        #expect(server.received.count == 1)
        await daemon.cleanUp()
        await server.shutdown()
    }
}
