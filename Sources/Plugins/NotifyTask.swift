import AsyncHTTPClient
import Crypto
import FoundationEssentials
import NIOCore
import NIOHTTP1
import ReleaseKit

/// Posts the release's outcome to webhooks, after every other task, whether the release
/// succeeded, failed or was cancelled.
///
/// Reads `RELEASE_NOTIFY_URL` (comma-separated URLs), `RELEASE_NOTIFY_SECRET` (signs the body
/// with HMAC-SHA256 in `X-Releasectl-Signature: sha256=<hex>`), `RELEASE_NOTIFY_TIMEOUT`
/// (per request, default 10s). The body is the masked record plus a Slack-compatible `text`.
/// Each URL gets up to 3 tries, with backoff, on network errors and 5xx answers.
public struct NotifyTask: ReleaseTask {
    public static let name = "notify"
    public static let gate = "NOTIFY_DURING_RELEASE"
    public static let summary = "POST the outcome as JSON to RELEASE_NOTIFY_URL (runs last, also after a failure)"
    public static let takesCommand = false
    public static let runsAfterFailure = true
    public static let maxAttempts = 3

    public static let urlVariable = "RELEASE_NOTIFY_URL"
    public static let secretVariable = "RELEASE_NOTIFY_SECRET"
    public static let requiredVariable = "RELEASE_NOTIFY_REQUIRED"
    public static let timeoutVariable = "RELEASE_NOTIFY_TIMEOUT"
    public static let variables = [urlVariable, secretVariable, requiredVariable, timeoutVariable]
    public static let switches = [requiredVariable]
    public static let failureHint: String? = "set \(requiredVariable)=true to fail the release"

    public init() {}

    /// A notify failure fails the release only when `RELEASE_NOTIFY_REQUIRED` is on (a value
    /// that is neither on nor off rejects the release, as for a gate).
    public static func failureFailsRelease(env: [String: String]) throws(RejectReason) -> Bool {
        try Gate.parse(variable: requiredVariable, value: env[requiredVariable]) == .on
    }

    /// Notify with no URL to post to fails, and `plan` says so before.
    public static func knownProblem(env: [String: String]) -> String? {
        urls(in: env).isEmpty ? "\(urlVariable) is not set" : nil
    }

    /// Where the report goes and how, for `plan`.
    public static func planNote(env: [String: String]) -> String? {
        knownProblem(env: env) == nil ? describe(env: env) : nil
    }

    public func run(in context: TaskContext) async throws {
        let env = context.request.env
        if let problem = Self.knownProblem(env: env) { throw TaskFailure(.failed, reason: problem) }
        let checked: [WebhookURL]
        do throws(RejectReason) { checked = try Self.checkedURLs(in: env) } catch {
            throw TaskFailure(.failed, reason: error.message)
        }
        let (timeout, problem) = Self.timeout(in: env)
        if let problem { context.say(problem) }
        let body = Self.payload(for: Self.provisional(context.outcome))
        var signature: String?
        if let secret = env[Self.secretVariable], !secret.isEmpty {
            signature = Self.signature(body: body, secret: secret)
        }
        var failures: [String] = []
        for url in checked {
            if let problem = await post(body, to: url, signature: signature, state: context.outcome.state, id: context.request.id.rawValue, timeout: timeout, context: context) {
                failures.append(problem)
            }
        }
        if !failures.isEmpty {
            throw TaskFailure(.failed, reason: failures.joined(separator: "; "))
        }
    }

    public static let defaultTimeout = Duration.seconds(10)
    /// The longest per-request timeout honoured, and the most URLs: a report is bounded.
    public static let maximumTimeout = Duration.seconds(60)
    public static let maximumURLs = 10

    /// The daemon's HTTP client: it does not follow redirects, so a report (and its signature)
    /// goes only to the URLs the app named. Shared for the daemon's life.
    static let client = HTTPClient(eventLoopGroupProvider: .singleton,
                                   configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))

    /// The webhook URLs of `RELEASE_NOTIFY_URL`: comma-separated, blanks around each ignored.
    public static func urls(in env: [String: String]) -> [String] {
        (env[urlVariable] ?? "").split(separator: ",").map { String($0).trimmingBlanks() }.filter { !$0.isEmpty }
    }

    /// The per-request timeout, `RELEASE_NOTIFY_TIMEOUT` (default 10s). An unreadable value
    /// does not fail the release: the default is used, and `problem` says so.
    public static func timeout(in env: [String: String]) -> (timeout: Duration, problem: String?) {
        guard let text = env[timeoutVariable] else { return (defaultTimeout, nil) }
        guard let t = try? DurationParser.parse(text), t > .zero else {
            return (defaultTimeout, "RELEASE_NOTIFY_TIMEOUT=\(Masking.preview(text)) is not a duration (e.g. 5s, 500ms); using \(DurationParser.format(defaultTimeout))")
        }
        if t > maximumTimeout {
            return (maximumTimeout, "RELEASE_NOTIFY_TIMEOUT=\(text) is over the limit; using \(DurationParser.format(maximumTimeout))")
        }
        return (t, nil)
    }

    /// One line for `releasectl plan`: where the report goes and how.
    public static func describe(env: [String: String]) -> String {
        let urls = urls(in: env)
        var line = "POST to " + urls.map(WebhookURL.redact).joined(separator: ", ")
        if let secret = env[secretVariable], !secret.isEmpty { line += ", signed (X-Releasectl-Signature)" }
        let (timeout, problem) = timeout(in: env)
        return line + ", \(DurationParser.format(timeout)) per request" + (problem.map { " (\($0))" } ?? "")
    }

    /// Checks the task's variables when a request that will run it arrives: every URL of
    /// `RELEASE_NOTIFY_URL` must parse as a `WebhookURL`, and there may be at most
    /// `maximumURLs`. A bad one rejects the release (exit 2) before anything runs.
    public static func validate(env: [String: String]) throws(RejectReason) {
        _ = try checkedURLs(in: env)
    }

    /// The URLs of `RELEASE_NOTIFY_URL`, each checked; the first bad one is the error.
    static func checkedURLs(in env: [String: String]) throws(RejectReason) -> [WebhookURL] {
        let urls = urls(in: env)
        guard urls.count <= maximumURLs else {
            throw RejectReason(.env, "RELEASE_NOTIFY_URL names \(urls.count) URLs; at most \(maximumURLs)")
        }
        var checked: [WebhookURL] = []
        for url in urls {
            do throws(WebhookURL.Problem) { checked.append(try WebhookURL.parse(url)) } catch {
                throw RejectReason(.env, "RELEASE_NOTIFY_URL: \(error)")
            }
        }
        return checked
    }

    /// Returns nil on success, else why it failed.
    func post(_ body: [UInt8], to url: WebhookURL, signature: String?, state: ReleaseState, id: String, timeout: Duration, context: TaskContext) async -> String? {
        let shown = WebhookURL.redact(url.text)
        var request = HTTPClientRequest(url: url.text)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "releasectl/1")
        request.headers.add(name: "X-Releasectl-Event", value: "release.\(state.rawValue)")
        request.headers.add(name: "X-Releasectl-Release-Id", value: id)
        if let signature { request.headers.add(name: "X-Releasectl-Signature", value: signature) }
        var lastProblem = ""
        for attempt in 1...Self.maxAttempts {
            request.body = .bytes(ByteBuffer(bytes: body))
            let started = ContinuousClock.now
            do {
                let response = try await Self.client.execute(request, timeout: .nanoseconds(timeout.nanosecondsClamped))
                _ = try? await response.body.collect(upTo: 1 << 20)
                let ms = (ContinuousClock.now - started).milliseconds
                let code = response.status.code
                context.say("POST \(shown) → \(code) (\(ms) ms)")
                if (200..<300).contains(code) { return nil }
                lastProblem = "POST \(shown) answered \(code) \(response.status.reasonPhrase)"
                if code < 500 { return lastProblem }
            } catch {
                lastProblem = "POST \(shown) failed: \(context.masking.apply(String(describing: error)))"
                context.say(lastProblem)
            }
            if attempt < Self.maxAttempts {
                let backoff = Duration.milliseconds(500 << (attempt - 1))
                context.say("retrying in \(DurationParser.format(backoff)) (attempt \(attempt + 1) of \(Self.maxAttempts))")
                try? await Task.sleep(for: backoff)
            }
        }
        return lastProblem
    }

    /// The release as notify reports it: it ends as notify ends, so `finishedAt` and
    /// `durationMs` are filled in as of now when the record does not have them yet.
    static func provisional(_ record: ReleaseRecord, now: Date = Date()) -> ReleaseRecord {
        var r = record
        if r.finishedAt == nil { r.finishedAt = now }
        if r.durationMs == nil, let started = r.startedAt {
            r.durationMs = max(0, Int64((r.finishedAt!.timeIntervalSince(started) * 1000).rounded()))
        }
        return r
    }

    /// The JSON body: the record's fields plus `text`.
    public static func payload(for record: ReleaseRecord) -> [UInt8] {
        var w = PrettyJSONWriter()
        w.beginObject()
        record.writeMembers(to: &w)
        w.key("text"); w.string(text(for: record))
        w.endObject()
        return w.bytes
    }

    /// One line for chat: "shop v42: release failed (migrate exited with status 1) in 5.1s".
    public static func text(for record: ReleaseRecord) -> String {
        let app = record.app ?? "?"
        let release = record.release ?? "?"
        var line = "\(app) \(release): \(record.phase == .postdeploy ? "postdeploy" : "release") \(record.state.rawValue)"
        if let reason = record.reason { line += " (\(reason))" }
        if let ms = record.durationMs { line += " in \(Summary.duration(ms))" }
        let tasks = record.tasks.filter { $0.name != name && $0.name != NotifyDeployedTask.name && $0.state != .skipped }
            .map { "\($0.name) \($0.state.rawValue)" }
        if !tasks.isEmpty { line += " — " + tasks.joined(separator: ", ") }
        return line
    }

    /// `sha256=<hex>` of HMAC-SHA256(secret, body), as GitHub webhooks sign.
    public static func signature(body: [UInt8], secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array(secret.utf8)))
        return "sha256=" + mac.map { String(format2hex: $0) }.joined()
    }

}

extension String {
    init(format2hex byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}

extension Duration {
    var nanosecondsClamped: Int64 {
        let (s, atto) = components
        return s > 9_000_000_000 ? .max : s * 1_000_000_000 + atto / 1_000_000_000
    }
}
