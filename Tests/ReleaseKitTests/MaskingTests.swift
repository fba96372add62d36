import ReleaseKit
import Testing

/// Secret values are masked as `***` wherever they would show.
@Suite("masking")
struct MaskingTests {
    @Test("names that look secret: *_PASSWORD, *_SECRET, *_TOKEN, *_KEY, *_KEY_BASE, DATABASE_URL (any case)",
          arguments: ["DB_PASSWORD", "SMTP_PASSWORD", "RELEASE_NOTIFY_SECRET", "AWS_SECRET", "GITHUB_TOKEN", "API_TOKEN",
                      "STRIPE_KEY", "AWS_SECRET_ACCESS_KEY", "RAILS_MASTER_KEY", "SECRET_KEY_BASE", "APP_KEY_BASE", "DATABASE_URL",
                      "database_url", "db_password", "Github_Token", "PASSWORD", "SECRET", "TOKEN", "REDIS_PASS", "FTP_PASSWD"])
    func secretNames(_ name: String) {
        #expect(Masking.isSecretName(name))
        let masking = Masking(env: [name: "s3cr3t-value"])
        #expect(masking.apply("connecting with s3cr3t-value now") == "connecting with *** now")
    }

    @Test("ordinary names are not secret",
          arguments: ["PATH", "HOME", "RAILS_ENV", "KEYBOARD", "MONKEY", "TURKEY_COUNT", "KEY_NAME", "PASSWORD_MIN_LENGTH",
                      "TOKENIZER", "SECRETS_DIR", "DATABASE_URL_POOL", "MY_DATABASE_URL", "RUN_MIGRATIONS_DURING_RELEASE", "KEY"])
    func ordinaryNames(_ name: String) {
        #expect(!Masking.isSecretName(name))
        #expect(Masking(env: [name: "plain-value"]).apply("plain-value") == "plain-value")
    }

    @Test("every occurrence is masked, in the middle of words and lines too")
    func everyOccurrence() {
        let m = Masking(env: ["API_TOKEN": "tok123"])
        #expect(m.apply("tok123 tok123\nxtok123x") == "*** ***\nx***x")
        #expect(m.apply("tok12 tok1234") == "tok12 ***4")
        #expect(m.apply("") == "")
    }

    @Test("a URL with credentials is masked whole, and its password on its own, whatever the variable's name",
          arguments: [("REDIS_URL", "redis://user:hunter22@redis.internal:6379/0", "hunter22"),
                      ("CACHE", "memcached://admin:pa%24%24word@cache:11211", "pa%24%24word"),
                      ("UPSTREAM", "https://deploy:p@ss:w0rd@git.example.com/repo.git?x=1", "p@ss:w0rd")])
    func urlCredentials(_ name: String, _ url: String, _ password: String) {
        let m = Masking(env: [name: url])
        #expect(m.apply("url=\(url)") == "url=***")
        #expect(m.apply("auth failed for password \(password).") == "auth failed for password ***.")
    }

    @Test("a percent-encoded password is masked decoded too")
    func percentDecodedPassword() {
        let m = Masking(env: ["CACHE_URL": "redis://u:pa%24%24word@h:1/0"])
        #expect(m.apply("password is pa$$word") == "password is ***")
        #expect(m.apply("password is pa%24%24word") == "password is ***")
    }

    @Test("DATABASE_URL is masked whole, and its password when it is long enough")
    func databaseURL() {
        let m = Masking(env: ["DATABASE_URL": "postgres://shop:Sup3rS3cret@db:5432/shop"])
        #expect(m.apply("DATABASE_URL=postgres://shop:Sup3rS3cret@db:5432/shop") == "DATABASE_URL=***")
        #expect(m.apply("FATAL: password authentication failed (Sup3rS3cret)") == "FATAL: password authentication failed (***)")
        #expect(m.apply("connected to db:5432 as shop") == "connected to db:5432 as shop", "the host and user stay readable")
    }

    @Test("a user name alone before @ (a token in the URL) is masked")
    func tokenAsUserInfo() {
        let m = Masking(env: ["GIT_REMOTE": "https://ghp_abcdef123@github.com/org/repo"])
        #expect(m.apply("ghp_abcdef123") == "***")
    }

    @Test("URLs without credentials and plain values stay as they are",
          arguments: ["https://example.com/path?q=1", "https://example.com/a@b", "mailto:me@example.com", "user@host", "https://@host/x",
                      "https://user:@host/x"])
    func notCredentials(_ value: String) {
        let m = Masking(env: ["HOOK_URL": value])
        #expect(m.apply(value) == value)
        #expect(m.isEmpty)
    }

    @Test("the longest secret wins, so a secret containing another is masked whole")
    func longestFirst() {
        let m = Masking(env: ["A_TOKEN": "abcdef", "B_TOKEN": "abcdefghij"])
        #expect(m.apply("abcdefghij") == "***")
        #expect(m.apply("abcdef-ghij") == "***-ghij")
        #expect(m.secrets.map(\.count) == [10, 6])
    }

    @Test("values shorter than three characters are not masked (they would blank out ordinary output)")
    func shortValues() {
        let m = Masking(env: ["X_TOKEN": "ab", "Y_KEY": "", "Z_SECRET": "abc"])
        #expect(m.apply("ab cd abc") == "ab cd ***")
        #expect(m.secrets == [Array("abc".utf8)])
    }

    @Test("masking bytes in place reports whether anything changed, and handles non-UTF-8 text")
    func bytesInPlace() {
        let m = Masking(env: ["DB_PASSWORD": "pässwörd"])
        var bytes: [UInt8] = [0xFF] + Array("x pässwörd y".utf8) + [0xFE]
        #expect(m.apply(to: &bytes))
        #expect(bytes == [0xFF] + Array("x *** y".utf8) + [0xFE])
        var clean = Array("nothing here".utf8)
        #expect(!m.apply(to: &clean))
        #expect(clean == Array("nothing here".utf8))
    }

    @Test("no secrets masks nothing")
    func none() {
        #expect(Masking.none.isEmpty)
        #expect(Masking.none.apply("anything *** at all") == "anything *** at all")
        #expect(Masking(env: ["RAILS_ENV": "production"]).isEmpty)
    }

    @Test("maskedEnv masks the secret values and secrets inside other values, keeping the keys")
    func maskedEnv() {
        let env = ["DB_PASSWORD": "hunter22", "GREETING": "hello", "CONN": "user=app password=hunter22", "RAILS_ENV": "production"]
        let masked = Masking(env: env).maskedEnv(env)
        #expect(masked == ["DB_PASSWORD": "***", "GREETING": "hello", "CONN": "user=app password=***", "RAILS_ENV": "production"])
    }

    @Test("preview quotes, escapes quotes, backslashes and control characters, and cuts long text")
    func preview() {
        #expect(Masking.preview("plain") == "\"plain\"")
        #expect(Masking.preview("a\"b\\c") == #""a\"b\\c""#)
        #expect(Masking.preview("l1\nl2\tt\rr") == #""l1\nl2\tt\rr""#)
        #expect(Masking.preview("\u{1b}[31mred\u{7}") == #""\u{1b}[31mred\u{7}""#)
        #expect(Masking.preview("") == "\"\"")
        #expect(Masking.preview(String(repeating: "x", count: 100)) == "\"" + String(repeating: "x", count: 60) + "…\"")
        #expect(Masking.preview("abcdef", limit: 3) == "\"abc…\"")
        #expect(Masking.preview("é✓") == "\"é✓\"")
    }
}
