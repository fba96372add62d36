import FoundationEssentials

/// The scripts of an app's `app.json` that a release runs, as Dokku and Heroku run them:
///
/// ```json
/// {"scripts": {"dokku": {"predeploy": "…", "postdeploy": "…"}, "postdeploy": "…"}}
/// ```
///
/// - `scripts.dokku.predeploy`: before traffic moves, every deploy (Dokku);
/// - `scripts.dokku.postdeploy`: after traffic moved, every deploy (Dokku);
/// - `scripts.postdeploy`: after traffic moved, on the app's first successful deploy only
///   (Heroku; a string, or an object whose `command` is one).
///
/// Every other key (`name`, `env`, `formation`, `cron`, `addons`, `buildpacks`,
/// `healthchecks`…) belongs to other tools and is ignored. The file is the app author's, so it
/// is read as hostile: at most 64 KiB (the caller's limit), nested at most `maximumDepth`
/// deep (checked before it is parsed), and a script of the wrong type, with a NUL, or a file
/// that is not JSON rejects the release naming the file, the place and the problem.
public struct AppJSON: Sendable, Equatable {
    public static let fileName = "app.json"
    /// The deepest nesting of arrays and objects read.
    public static let maximumDepth = 32

    public var dokkuPredeploy: String?
    public var dokkuPostdeploy: String?
    /// Heroku's `scripts.postdeploy`.
    public var firstDeploy: String?

    public init(dokkuPredeploy: String? = nil, dokkuPostdeploy: String? = nil, firstDeploy: String? = nil) {
        self.dokkuPredeploy = dokkuPredeploy
        self.dokkuPostdeploy = dokkuPostdeploy
        self.firstDeploy = firstDeploy
    }

    /// Parses app.json's bytes; `path` names the file in messages.
    public static func parse(_ bytes: [UInt8], path: String) throws(RejectReason) -> AppJSON {
        func fail(_ problem: String) -> RejectReason { RejectReason(.appJSON, "\(path): \(problem)") }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw fail("not valid UTF-8") }
        if let line = tooDeep(bytes) {
            throw fail("nested more than \(maximumDepth) levels deep (line \(line)); app.json is a flat object of settings")
        }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        } catch {
            throw fail("not valid JSON: \(JSONValue.describe(error))")
        }
        guard case .object(let root) = value else { throw fail("must be a JSON object, not \(value.kind)") }
        var result = AppJSON()
        guard let scriptsValue = root["scripts"] else { return result }
        guard case .object(let scripts) = scriptsValue else {
            if case .null = scriptsValue { return result }
            throw fail("\"scripts\" must be an object, not \(scriptsValue.kind)")
        }
        func script(_ value: JSONValue?, at place: String) throws(RejectReason) -> String? {
            switch value {
            case nil, .null?: return nil
            case .string(let s)?:
                if s.utf8.contains(0) { throw fail("\(place) contains a NUL character") }
                return s.trimmingBlanks().isEmpty ? nil : s
            case let other?: throw fail("\(place) must be a string (run by /bin/sh -c), not \(other.kind)")
            }
        }
        switch scripts["dokku"] {
        case nil, .null?: break
        case .object(let dokku)?:
            result.dokkuPredeploy = try script(dokku["predeploy"], at: "scripts.dokku.predeploy")
            result.dokkuPostdeploy = try script(dokku["postdeploy"], at: "scripts.dokku.postdeploy")
        case let other?: throw fail("scripts.dokku must be an object, not \(other.kind)")
        }
        switch scripts["postdeploy"] {
        case .object(let o)?:
            // Heroku's long form: {"command": "…", "size": "…"} (the size is Heroku's alone).
            guard o["command"] != nil else { throw fail("scripts.postdeploy has no \"command\"") }
            result.firstDeploy = try script(o["command"], at: "scripts.postdeploy.command")
        case let other:
            result.firstDeploy = try script(other, at: "scripts.postdeploy")
        }
        return result
    }

    /// The line where nesting first goes past `maximumDepth`, or nil. Strings are skipped (a
    /// bracket inside one nests nothing); the JSON itself is checked by the parser after.
    static func tooDeep(_ bytes: [UInt8]) -> Int? {
        var depth = 0, line = 1
        var inString = false, escaped = false
        for b in bytes {
            if b == UInt8(ascii: "\n") { line += 1 }
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > maximumDepth { return line }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return nil
    }
}
