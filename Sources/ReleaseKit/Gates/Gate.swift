/// Reads a gate variable from a request's env.
///
/// On: `true`, `1`, `yes`, `on`; off: empty, `false`, `0`, `no`, `off` (any case, blanks
/// around ignored). Anything else is an error naming the variable and value: a typo must never
/// silently skip a migration. Values come from the request's env only.
public enum Gate {
    public enum Value: Sendable, Equatable { case on, off }

    /// Parses a gate value; nil when unset.
    public static func parse(variable: String, value: String?) throws(RejectReason) -> Value? {
        guard let value else { return nil }
        switch value.trimmingBlanks().lowercased() {
        case "true", "1", "yes", "on": return .on
        case "", "false", "0", "no", "off": return .off
        default:
            throw RejectReason(.gate, "\(variable)=\(Masking.preview(value)) is not a gate value: use true/1/yes/on or false/0/no/off")
        }
    }

    /// Whether a gate is on, given its default when the variable is unset.
    public static func isOn(variable: String, in env: [String: String], default defaultValue: Bool = false) throws(RejectReason) -> Bool {
        switch try parse(variable: variable, value: env[variable]) {
        case .on?: true
        case .off?: false
        case nil: defaultValue
        }
    }

    /// Words for a reading, used in task reasons: "RUN_MIGRATIONS_DURING_RELEASE is off (unset)".
    public static func describe(_ reading: GateReading) -> String {
        switch reading.value {
        case nil: "\(reading.variable) is unset"
        case let v?: "\(reading.variable)=\(v)"
        }
    }

    /// Variables in `env` that look like a misspelt gate, each with the gate it resembles.
    ///
    /// A name counts as misspelt when it is not a known variable and is equal to a gate ignoring
    /// case, or within a small edit distance of one (1 per 10 characters, at least 2).
    public static func nearMisses(in env: [String: String], gates: [String], known: Set<String>) -> [(variable: String, gate: String)] {
        var result: [(String, String)] = []
        for key in env.keys.sorted() where !known.contains(key) && !gates.contains(key) {
            let upper = key.uppercased()
            var best: (gate: String, distance: Int)?
            for gate in gates {
                let limit = max(2, gate.count / 10)
                let d = upper == gate ? 0 : editDistance(Array(upper.utf8), Array(gate.utf8), limit: limit)
                if d <= limit, d < (best?.distance ?? .max) { best = (gate, d) }
            }
            if let best { result.append((key, best.gate)) }
        }
        return result
    }

    /// Levenshtein distance, giving up (returning limit + 1) once it exceeds `limit`.
    static func editDistance(_ a: [UInt8], _ b: [UInt8], limit: Int) -> Int {
        if abs(a.count - b.count) > limit { return limit + 1 }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            current[0] = i
            var rowMin = current[0]
            for j in 1...max(b.count, 1) where !b.isEmpty {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                rowMin = min(rowMin, current[j])
            }
            if rowMin > limit { return limit + 1 }
            swap(&previous, &current)
        }
        return a.isEmpty ? b.count : previous[b.count]
    }
}

extension String {
    /// Drops spaces, tabs, CR and LF at both ends.
    public func trimmingBlanks() -> String {
        // "\r\n" is one Character (a grapheme cluster), equal to neither "\r" nor "\n".
        let blanks: Set<Character> = [" ", "\t", "\r", "\n", "\r\n"]
        var s = Substring(self)
        while let f = s.first, blanks.contains(f) { s.removeFirst() }
        while let l = s.last, blanks.contains(l) { s.removeLast() }
        return String(s)
    }
}
