import Foundation
import ReleaseKit
import Testing

/// Records are written by hand (`ReleaseRecord.encoded()`): valid JSON, every field in schema
/// order, the same bytes every time, decoding back to the record.
@Suite("record encoding")
struct RecordEncodingTests {
    /// Times a Double holds exactly (whole eighths of a second), so that the millisecond
    /// timestamps give them back unchanged.
    static func time(_ ms: Int64) -> Date { Date(timeIntervalSince1970: Double(ms) / 1000) }

    static let awkward = "quote \" backslash \\ slash / tab \t newline \n cr \r bell \u{07} esc \u{1b} del \u{7f} é ✓ 🚀 \u{2028} nul \u{0}"

    static var records: [ReleaseRecord] {
        var full = ReleaseRecord(id: "01JDQ8K3ZP6V4TQX2M9B7C5N1R", app: "shop", release: "v42 \(awkward)", state: .failed,
                                 reason: "migrate exited with status 1", warnings: ["RUN_MIGRATION_DURING_RELEASE looks like X", awkward],
                                 directory: "/srv/apps/shop/v42", submittedAt: time(1_764_085_589_125), retryOf: "01JDQ8K3ZP6V4TQX2M9B7C5N1Q")
        full.reasonCode = "gate"
        full.startedAt = time(1_764_085_589_250)
        full.finishedAt = time(1_764_085_594_875)
        full.durationMs = 5625
        var migrate = TaskRecord(name: "migrate", state: .failed, reason: "exited with status 1",
                                 gate: GateReading(variable: "RUN_MIGRATIONS_DURING_RELEASE", value: " yes "),
                                 command: ["bundle", "exec", "rails", "db:migrate", awkward, ""])
        migrate.exitStatus = 1
        migrate.startedAt = time(1_764_085_589_375)
        migrate.durationMs = 4100
        var killed = TaskRecord(name: "seed", state: .failed, reason: "killed by signal 9 (SIGKILL)")
        killed.signal = 9
        full.tasks = [migrate, killed, TaskRecord(name: "cache-clear", state: .skipped, reason: "CLEAR_CACHE_DURING_RELEASE is off (unset)",
                                                  gate: GateReading(variable: "CLEAR_CACHE_DURING_RELEASE", value: nil)),
                      TaskRecord(name: "notify", state: .notRun, command: [])]
        let bare = ReleaseRecord(id: "unnamed", app: nil, release: nil, state: .rejected)
        return [full, bare]
    }

    @Test("valid JSON holding every field, the same bytes every time, and the --json text without its newline")
    func validAndDeterministic() throws {
        for record in Self.records {
            let text = record.encoded()
            let object = try #require(try JSONSerialization.jsonObject(with: Data(text)) as? [String: Any])
            #expect(object["id"] as? String == record.id)
            #expect(object["state"] as? String == record.state.rawValue)
            #expect((object["tasks"] as? [Any])?.count == record.tasks.count)
            #expect(text.last == UInt8(ascii: "\n"))
            #expect(record.encoded() == text, "the same record gives the same bytes")
            #expect(Array(JSONOutput.record(record).utf8) + [UInt8(ascii: "\n")] == text)
        }
        let list = JSONOutput.records(Self.records)
        #expect((try JSONSerialization.jsonObject(with: Data(list.utf8)) as? [Any])?.count == 2)
        #expect(JSONOutput.records(Self.records) == list)
    }

    @Test("decodes back to the same record")
    func roundTrip() throws {
        for record in Self.records {
            #expect(try ReleaseRecord.decode(record.encoded()) == record)
        }
    }

    @Test("pretty, in schema order, slashes not escaped")
    func layout() {
        let text = String(decoding: Self.records[0].encoded(), as: UTF8.self)
        #expect(text.hasPrefix("{\n  \"version\" : 1,\n  \"id\" : \"01JDQ8K3ZP6V4TQX2M9B7C5N1R\",\n  \"app\" : \"shop\",\n"))
        #expect(text.contains("\"directory\" : \"/srv/apps/shop/v42\""))
        #expect(text.contains("\"retryOf\" : \"01JDQ8K3ZP6V4TQX2M9B7C5N1Q\",\n  \"tasks\" : [\n    {\n      \"name\" : \"migrate\",\n"))
        let bare = String(decoding: Self.records[1].encoded(), as: UTF8.self)
        #expect(bare == "{\n  \"version\" : 1,\n  \"id\" : \"unnamed\",\n  \"app\" : null,\n  \"release\" : null,\n  \"phase\" : \"predeploy\",\n  \"state\" : \"rejected\",\n  \"warnings\" : [],\n  \"tasks\" : []\n}\n")
    }
}
