import ReleaseKit
import ReleaseTOML
import Testing

/// What release.toml and released.toml make of valid TOML: the schema's own refusals, and what
/// any TOML document may hold.
@Suite("configuration documents")
struct ConfigDocumentTests {
    @Test("a valid document whose meaning the schema refuses: a NUL escape is a string, a command may not hold it")
    func schemaRefusesWhatTOMLAllows() throws {
        let document = "[tasks.migrate]\ncommand = \"a\\u0000b\""
        let parsed = try TOML.parse(document)
        #expect(parsed["tasks"]?.table?["migrate"]?.table?["command"] == .string("a\u{0}b"))
        #expect {
            try AppConfig.parse(document, path: "release.toml", taskNames: ["migrate"])
        } throws: { error in
            (error as? RejectReason)?.message == "release.toml: [tasks.migrate] command contains a NUL character"
        }
    }

    @Test("release.toml and released.toml may start with a byte order mark")
    func configsWithBOM() throws {
        let app = try AppConfig.parse("\u{FEFF}[tasks.migrate]\r\ncommand = \"rake db:migrate\"\r\n", path: "release.toml", taskNames: ["migrate"])
        #expect(app.tasks["migrate"]?.command == .shell("rake db:migrate"))
        let daemon = try DaemonConfig.parse("\u{FEFF}max-parallel = 3\n", path: "released.toml")
        #expect(daemon.maxParallel == 3)
    }
}
