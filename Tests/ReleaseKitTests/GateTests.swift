import ReleaseKit
import Testing

/// Gate values: every on and off form, typos rejected naming the variable and value, and
/// near-miss variable names found.
@Suite("gates")
struct GateTests {
    static let variable = "RUN_MIGRATIONS_DURING_RELEASE"
    static let gates = ["RUN_PROCFILE_RELEASE", "RUN_MIGRATIONS_DURING_RELEASE", "SEED_DB_DURING_RELEASE",
                        "CLEAR_CACHE_DURING_RELEASE", "NOTIFY_DURING_RELEASE", "RELEASE_NOTIFY_REQUIRED"]

    @Test("on: true, 1, yes, on — any case, blanks around ignored",
          arguments: ["true", "1", "yes", "on", "TRUE", "True", "tRuE", "YES", "Yes", "ON", "On",
                      " true", "true ", "\ttrue\t", " 1 ", "\nyes\r\n", "  On  "])
    func onValues(_ value: String) throws {
        #expect(try Gate.parse(variable: Self.variable, value: value) == .on)
        #expect(try Gate.isOn(variable: Self.variable, in: [Self.variable: value]))
    }

    @Test("off: empty, false, 0, no, off — any case, blanks around ignored",
          arguments: ["", " ", "\t", "false", "0", "no", "off", "FALSE", "False", "NO", "Off", "OFF", " false ", "\t0\n", "  no"])
    func offValues(_ value: String) throws {
        #expect(try Gate.parse(variable: Self.variable, value: value) == .off)
        #expect(try !Gate.isOn(variable: Self.variable, in: [Self.variable: value], default: true),
                "an explicit off value beats an on default")
    }

    @Test("unset reads as nil and takes the task's default")
    func unset() throws {
        #expect(try Gate.parse(variable: Self.variable, value: nil) == nil)
        #expect(try !Gate.isOn(variable: Self.variable, in: [:]))
        #expect(try Gate.isOn(variable: Self.variable, in: [:], default: true))
        // Another variable's value is not this gate's.
        #expect(try !Gate.isOn(variable: Self.variable, in: ["SEED_DB_DURING_RELEASE": "true"]))
    }

    @Test("anything else rejects, naming the variable and the value",
          arguments: ["ture", "enabled", "disabled", "y", "n", "t", "f", "2", "-1", "01", "yes!", "true false",
                      "tru e", "nope", "\u{00A0}true", "ｔｒｕｅ", "true\u{0}", "on;", "\"true\""])
    func typosReject(_ value: String) {
        let error = #expect(throws: RejectReason.self) { try Gate.parse(variable: Self.variable, value: value) }
        #expect(error?.code == .gate)
        #expect(error?.message.hasPrefix("\(Self.variable)=\(Masking.preview(value)) is not a gate value") == true,
                "\(error?.message ?? "no error")")
        #expect(error?.message.contains("true/1/yes/on or false/0/no/off") == true)
        #expect(throws: RejectReason.self) { try Gate.isOn(variable: Self.variable, in: [Self.variable: value], default: true) }
    }

    @Test("a typo's value is shown safely: quoted, control characters escaped, long values cut")
    func typoValueRendering() {
        let error = #expect(throws: RejectReason.self) { try Gate.parse(variable: "SEED_DB_DURING_RELEASE", value: "tr\nue\u{1b}[31m") }
        #expect(error?.message.hasPrefix("SEED_DB_DURING_RELEASE=\"tr\\nue\\u{1b}[31m\" is not a gate value") == true, "\(String(describing: error))")
        let long = String(repeating: "x", count: 500)
        let longError = #expect(throws: RejectReason.self) { try Gate.parse(variable: "SEED_DB_DURING_RELEASE", value: long) }
        #expect((longError?.message.count ?? 0) < 200)
        #expect(longError?.message.contains("…") == true)
    }

    @Test("describe says unset or the raw value")
    func describe() {
        #expect(Gate.describe(GateReading(variable: "SEED_DB_DURING_RELEASE", value: nil)) == "SEED_DB_DURING_RELEASE is unset")
        #expect(Gate.describe(GateReading(variable: "SEED_DB_DURING_RELEASE", value: " yes")) == "SEED_DB_DURING_RELEASE= yes")
    }

    @Test("a variable that looks like a misspelt gate is named with the gate it resembles",
          arguments: [
              ("RUN_MIGRATION_DURING_RELEASE", "RUN_MIGRATIONS_DURING_RELEASE"),    // one letter missing
              ("RUN_MIGRATIONS_DURNIG_RELEASE", "RUN_MIGRATIONS_DURING_RELEASE"),   // two letters swapped
              ("run_migrations_during_release", "RUN_MIGRATIONS_DURING_RELEASE"),   // wrong case
              ("Run_Migrations_During_Release", "RUN_MIGRATIONS_DURING_RELEASE"),
              ("SEED_DB_DURING_RELASE", "SEED_DB_DURING_RELEASE"),
              ("SEED_DB_DURING_RELEASES", "SEED_DB_DURING_RELEASE"),
              ("CLEAR_CACHES_DURING_RELEASE", "CLEAR_CACHE_DURING_RELEASE"),
              ("NOTIFY_DURING_RELAESE", "NOTIFY_DURING_RELEASE"),
              ("RUN_PROCFILE_RELEASES", "RUN_PROCFILE_RELEASE"),
              ("RELEASE_NOTIFY_REQUIRE", "RELEASE_NOTIFY_REQUIRED"),
          ])
    func nearMiss(_ variable: String, _ gate: String) throws {
        let found = Gate.nearMisses(in: [variable: "true", "DATABASE_URL": "postgres://x"], gates: Self.gates, known: [])
        try #require(found.count == 1, "\(found)")
        #expect(found[0].variable == variable)
        #expect(found[0].gate == gate)
    }

    @Test("gates themselves, known variables and unrelated names are not near misses",
          arguments: ["RUN_MIGRATIONS_DURING_RELEASE", "SEED_DB_DURING_RELEASE", "RELEASE_NOTIFY_URL", "RELEASE_NOTIFY_SECRET",
                      "DATABASE_URL", "PATH", "RAILS_ENV", "MIGRATIONS_PATH", "RUN_SEEDS", "RELEASE_ID", ""])
    func notNearMiss(_ variable: String) {
        let found = Gate.nearMisses(in: [variable: "1"], gates: Self.gates, known: ["RELEASE_NOTIFY_URL", "RELEASE_NOTIFY_SECRET"])
        #expect(found.isEmpty, "\(variable) reported as \(found)")
    }

    @Test("a known variable close to a gate is not reported")
    func knownIsNotReported() {
        let env = ["RELEASE_NOTIFY_REQUIRE": "1"]
        #expect(Gate.nearMisses(in: env, gates: Self.gates, known: ["RELEASE_NOTIFY_REQUIRE"]).isEmpty)
        #expect(Gate.nearMisses(in: env, gates: Self.gates, known: []).count == 1)
    }

    @Test("near misses come out sorted by variable name, each once, with the closest gate")
    func nearMissOrder() {
        let env = ["SEED_DB_DURING_RELASE": "1", "CLEAR_CACHE_DURING_RELASE": "1", "RUN_MIGRATION_DURING_RELEASE": "1", "OTHER": "x"]
        let found = Gate.nearMisses(in: env, gates: Self.gates, known: [])
        #expect(found.map(\.variable) == ["CLEAR_CACHE_DURING_RELASE", "RUN_MIGRATION_DURING_RELEASE", "SEED_DB_DURING_RELASE"])
        #expect(found.map(\.gate) == ["CLEAR_CACHE_DURING_RELEASE", "RUN_MIGRATIONS_DURING_RELEASE", "SEED_DB_DURING_RELEASE"])
    }

    @Test("trimmingBlanks drops spaces, tabs, CR and LF at both ends only")
    func trimming() {
        #expect(" \t\r\n a b \n\t".trimmingBlanks() == "a b")
        #expect("".trimmingBlanks() == "")
        #expect(" \n ".trimmingBlanks() == "")
        #expect("\u{00A0}x\u{00A0}".trimmingBlanks() == "\u{00A0}x\u{00A0}")
    }
}
