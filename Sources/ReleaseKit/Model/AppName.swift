/// Syntax rules shared by the CLI (which checks before spooling) and the daemon (which checks
/// again, since it trusts nothing in `incoming/`).
public enum Syntax {
    /// `[a-z0-9][a-z0-9-]{0,62}`
    public static func isValidAppName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...63).contains(bytes.count) else { return false }
        func ok(_ b: UInt8, first: Bool) -> Bool {
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
                || (!first && b == UInt8(ascii: "-"))
        }
        return bytes.enumerated().allSatisfy { ok($0.element, first: $0.offset == 0) }
    }

    /// 1 to 128 printable characters (no control characters).
    public static func isValidReleaseLabel(_ label: String) -> Bool {
        guard (1...128).contains(label.count) else { return false }
        return label.unicodeScalars.allSatisfy { !$0.properties.generalCategory.isControl }
    }

    /// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`, at most 255 characters.
    public static func isValidEnvKey(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard (1...255).contains(bytes.count) else { return false }
        func isAlpha(_ b: UInt8) -> Bool {
            (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == UInt8(ascii: "_")
        }
        return isAlpha(bytes[0]) && bytes.dropFirst().allSatisfy { isAlpha($0) || ($0 >= 48 && $0 <= 57) }
    }

    /// Why an env key is unacceptable, in words, or nil when it is fine.
    public static func envKeyProblem(_ key: String) -> String? {
        if key.isEmpty { return "an empty variable name" }
        if key.utf8.contains(0) { return "a variable name with a NUL byte" }
        if key.contains("=") { return "a variable name with '=' in it (\(Masking.preview(key)))" }
        if !isValidEnvKey(key) { return "an invalid variable name \(Masking.preview(key)) (letters, digits and _ only, not starting with a digit)" }
        return nil
    }

    /// An image reference as container engines take it: `[registry[:port]/]name[:tag][@digest]`,
    /// 1 to 255 characters of letters, digits and `._-/:@+`, not starting with `-` (it goes on
    /// the engine's command line: it must never be taken for an option).
    public static func isValidImageReference(_ reference: String) -> Bool {
        let bytes = Array(reference.utf8)
        guard (1...255).contains(bytes.count), bytes[0] != UInt8(ascii: "-") else { return false }
        return bytes.allSatisfy { b in
            (b >= 97 && b <= 122) || (b >= 65 && b <= 90) || (b >= 48 && b <= 57) || "._-/:@+".utf8.contains(b)
        }
    }

    /// The control-character check used for values that end up in paths and logs.
    public static func hasControlCharacters(_ s: String) -> Bool {
        s.unicodeScalars.contains { $0.properties.generalCategory.isControl }
    }
}

extension Unicode.GeneralCategory {
    var isControl: Bool { self == .control }
}
