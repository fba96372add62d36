import FoundationEssentials
import Synchronization

/// A release id: a ULID (26 characters of Crockford base32, the first 10 encoding the
/// submission time in milliseconds), so sorting ids sorts releases by submission time.
public struct ReleaseID: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    public let rawValue: String

    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    /// Accepts exactly 26 upper-case Crockford base32 characters whose first one is 0-7.
    public init?(_ string: String) {
        let bytes = Array(string.utf8)
        guard bytes.count == 26, bytes.allSatisfy({ Self.alphabet.contains($0) }),
              bytes[0] <= UInt8(ascii: "7") else { return nil }
        rawValue = string
    }

    public var description: String { rawValue }

    public static func < (a: ReleaseID, b: ReleaseID) -> Bool { a.rawValue < b.rawValue }

    /// The submission time encoded in the id.
    public var timestamp: Date {
        var ms: UInt64 = 0
        for byte in rawValue.utf8.prefix(10) {
            ms = ms << 5 | UInt64(Self.alphabet.firstIndex(of: byte)!)
        }
        return Date(timeIntervalSince1970: Double(ms) / 1000)
    }

    public init(from decoder: any Decoder) throws {
        let string = try decoder.singleValueContainer().decode(String.self)
        guard let id = ReleaseID(string) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a ULID: \(string)"))
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    private struct GeneratorState {
        var lastMillis: UInt64 = 0
        var random: (hi: UInt16, lo: UInt64) = (0, 0)
    }
    private static let state = Mutex(GeneratorState())

    /// A new id for the current time. Ids made by one process are strictly increasing even
    /// within one millisecond (the random part is incremented).
    public static func generate(now: Date = Date()) -> ReleaseID {
        let millis = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        let (ms, hi, lo) = state.withLock { s -> (UInt64, UInt16, UInt64) in
            if millis <= s.lastMillis {
                let (lo, overflow) = s.random.lo.addingReportingOverflow(1)
                s.random.lo = lo
                if overflow { s.random.hi &+= 1 }
            } else {
                s.lastMillis = millis
                var g = SystemRandomNumberGenerator()
                s.random = (UInt16.random(in: 0...UInt16.max, using: &g) & 0x7FFF, g.next())
            }
            return (s.lastMillis, s.random.hi, s.random.lo)
        }
        var chars = [UInt8](repeating: 0, count: 26)
        var t = ms
        for i in stride(from: 9, through: 0, by: -1) {
            chars[i] = alphabet[Int(t & 31)]
            t >>= 5
        }
        // 80 random bits: 16 high bits (one kept clear for increments) + 64 low bits.
        var r = (UInt128(hi) << 64) | UInt128(lo)
        for i in stride(from: 25, through: 10, by: -1) {
            chars[i] = alphabet[Int(r & 31)]
            r >>= 5
        }
        return ReleaseID(String(decoding: chars, as: UTF8.self))!
    }
}
