import Foundation
import ReleaseKit
import Testing

/// Release ids are ULIDs: sorting them sorts releases by submission time.
@Suite("release ids")
struct ReleaseIDTests {
    @Test("valid ULIDs are accepted as they are", arguments: ["01ARZ3NDEKTSV4RRFFQ69G5FAV", "00000000000000000000000000",
                                                               "7ZZZZZZZZZZZZZZZZZZZZZZZZZ", "01JDQ8K3ZP6V4TQX2M9B7C5N1R"])
    func valid(_ text: String) throws {
        let id = try #require(ReleaseID(text))
        #expect(id.rawValue == text)
        #expect(id.description == text)
    }

    @Test("anything else is not an id", arguments: [
        "", "01ARZ3NDEKTSV4RRFFQ69G5FA", "01ARZ3NDEKTSV4RRFFQ69G5FAVX", "01arz3ndektsv4rrffq69g5fav",
        "01ARZ3NDEKTSV4RRFFQ69G5FAI", "01ARZ3NDEKTSV4RRFFQ69G5FAL", "01ARZ3NDEKTSV4RRFFQ69G5FAO", "01ARZ3NDEKTSV4RRFFQ69G5FAU",
        "81ARZ3NDEKTSV4RRFFQ69G5FAV", "ZZZZZZZZZZZZZZZZZZZZZZZZZZ", "01ARZ3NDEKTSV4RRFFQ69G5FA/", "../../../../../../etc/passw",
        " 1ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FÄ",
    ])
    func invalid(_ text: String) {
        #expect(ReleaseID(text) == nil)
    }

    @Test("the timestamp is the first 10 characters, in milliseconds (the ULID spec's example)")
    func timestamp() {
        #expect(ReleaseID("01ARYZ6S41TSV4RRFFQ69G5FAV")!.timestamp == Date(timeIntervalSince1970: 1_469_918_176.385))
        #expect(ReleaseID("01ARZ3NDEKTSV4RRFFQ69G5FAV")!.timestamp == Date(timeIntervalSince1970: 1_469_922_850.259))
        #expect(ReleaseID("00000000000000000000000000")!.timestamp == Date(timeIntervalSince1970: 0))
    }

    @Test("a generated id is a valid ULID carrying the current (or given) time")
    func generatedCarriesTime() throws {
        let before = Date()
        let id = ReleaseID.generate()
        let after = Date()
        #expect(ReleaseID(id.rawValue) == id)
        #expect(id.timestamp >= before.addingTimeInterval(-0.001) && id.timestamp <= after, "\(id.timestamp) not in [\(before), \(after)]")
        // A given time a little ahead (the generator's state is process-wide: keep the step small).
        let soon = Date().addingTimeInterval(0.005)
        #expect(ReleaseID.generate(now: soon).timestamp >= soon.addingTimeInterval(-0.001), "never earlier than the time given")
    }

    @Test("ids made in a row are strictly increasing, within one millisecond and when the clock steps back")
    func monotonic() {
        let now = Date()
        var ids = (0..<2000).map { _ in ReleaseID.generate(now: now) }
        ids.append(ReleaseID.generate(now: now.addingTimeInterval(-60)))
        ids += (0..<10).map { _ in ReleaseID.generate() }
        for (a, b) in zip(ids, ids.dropFirst()) {
            #expect(a < b, "\(a) then \(b)")
        }
        #expect(Set(ids).count == ids.count)
    }

    @Test("ids of later times sort after ids of earlier ones, as strings too")
    func ordering() {
        let a = ReleaseID("01ARZ3NDEKTSV4RRFFQ69G5FAV")!
        let b = ReleaseID("01ARZ3NDEMAAAAAAAAAAAAAAAA")!
        #expect(a < b)
        #expect(a.rawValue < b.rawValue)
        #expect(a.timestamp < b.timestamp)
        #expect([b, a].sorted() == [a, b])
    }

    @Test("ids encode as a JSON string and refuse to decode from anything but a ULID")
    func codable() throws {
        let id = ReleaseID("01ARZ3NDEKTSV4RRFFQ69G5FAV")!
        let data = try JSONEncoder().encode([id])
        #expect(String(decoding: data, as: UTF8.self) == #"["01ARZ3NDEKTSV4RRFFQ69G5FAV"]"#)
        #expect(try JSONDecoder().decode([ReleaseID].self, from: data) == [id])
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([ReleaseID].self, from: Data(#"["not-an-id"]"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([ReleaseID].self, from: Data("[42]".utf8)) }
    }
}
