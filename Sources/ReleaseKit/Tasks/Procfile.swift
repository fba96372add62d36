/// The `release:` line of a Heroku-style Procfile.
public enum Procfile {
    public static let fileName = "Procfile"

    /// The command of the `release:` process type, or nil when the Procfile has none.
    /// A Procfile line is `<type>: <command>`; blank lines and `#` comments are ignored.
    public static func releaseCommand(in text: String) -> String? {
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let line = String(rawLine).trimmingBlanks()
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let type = line[..<colon].trimmingCharacters()
            if type == "release" {
                let command = String(line[line.index(after: colon)...]).trimmingBlanks()
                return command.isEmpty ? nil : command
            }
        }
        return nil
    }
}

extension Substring {
    func trimmingCharacters() -> String { String(self).trimmingBlanks() }
}
