import FoundationEssentials
import ReleaseKit
import ReleaseTOML

/// The parsers that read untrusted input, exercised with arbitrary bytes. The first byte picks
/// the parser; the rest is its input. Each run also checks a property that must hold, so a
/// wrong answer is caught as well as a crash.
enum FuzzTargets {
    static let registryNames = ["procfile", "migrate", "seed", "cache-clear", "notify"]
    static let gates = ["RUN_PROCFILE_RELEASE", "RUN_MIGRATIONS_DURING_RELEASE", "SEED_DB_DURING_RELEASE",
                        "CLEAR_CACHE_DURING_RELEASE", "NOTIFY_DURING_RELEASE"]

    static func run(_ input: [UInt8]) {
        guard let selector = input.first else { return }
        let body = Array(input.dropFirst())
        switch selector % 4 {
        case 0: requestDecoder(body)
        case 1: gateParser(body)
        case 2: dotenvParser(body)
        default: appConfigParser(body)
        }
    }

    /// A decoded request re-encodes to a request that decodes to the same value.
    static func requestDecoder(_ bytes: [UInt8]) {
        var partial = ReleaseRequest.Partial()
        guard let request = try? ReleaseRequest.decode(bytes, partial: &partial) else { return }
        var again = ReleaseRequest.Partial()
        guard let decoded = try? ReleaseRequest.decode(request.encoded(), partial: &again), decoded == request else {
            fatalError("request did not survive a round trip: \(request)")
        }
    }

    /// A gate value is on, off, unset or rejected — and parsing is insensitive to case and blanks.
    static func gateParser(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let first = try? Gate.parse(variable: "RUN_MIGRATIONS_DURING_RELEASE", value: text)
        let second = try? Gate.parse(variable: "RUN_MIGRATIONS_DURING_RELEASE", value: " " + text.uppercased() + "\t")
        if first != second, text.uppercased().lowercased() == text.lowercased() {
            fatalError("gate parsing depends on case or blanks: \(text.debugDescription)")
        }
        // The text also as an env of KEY=VALUE lines, for the near-miss detector.
        var env: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            env[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        for miss in Gate.nearMisses(in: env, gates: gates, known: []) where gates.contains(miss.variable) {
            fatalError("an exact gate name reported as misspelt: \(miss)")
        }
    }

    /// Parsed dotenv keys are valid variable names; values hold no NUL.
    static func dotenvParser(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let pairs = try? DotEnv.parse(text, file: "fuzz.env") else { return }
        for (key, value) in pairs {
            if !Syntax.isValidEnvKey(key) { fatalError("dotenv gave an invalid key \(key.debugDescription)") }
            if value.utf8.contains(0) { fatalError("dotenv gave a value with NUL") }
        }
    }

    /// release.toml: parses or is rejected with a message naming the file; never crashes. The
    /// TOML parser under it: an error names a line of the document, and its message shows no
    /// control character and only short quotes of the input.
    static func appConfigParser(_ bytes: [UInt8]) {
        guard let text = String(validating: bytes, as: UTF8.self) else { return }
        do throws(TOML.ParseError) {
            _ = try TOML.parse(text)
        } catch {
            let lines = bytes.count { $0 == 0x0A } + 1
            if !(1...lines).contains(error.line) { fatalError("a TOML error on line \(error.line) of \(lines)") }
            if error.message.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                fatalError("a TOML message with a control character: \(error.message.debugDescription)")
            }
            if error.message.unicodeScalars.count > 1_000 { fatalError("a TOML message of \(error.message.unicodeScalars.count) characters") }
        }
        do {
            let config = try AppConfig.parse(text, path: "release.toml", taskNames: registryNames, commandless: ["notify"])
            for (name, settings) in config.tasks {
                if !registryNames.contains(name) { fatalError("unknown task accepted: \(name)") }
                if case .argv(let a)? = settings.command, a.first?.isEmpty ?? true { fatalError("empty argv accepted") }
            }
        } catch {
            if !error.message.hasPrefix("release.toml: ") { fatalError("a rejection that does not name the file: \(error.message)") }
        }
    }
}
