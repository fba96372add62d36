/// Writes JSON text by hand in the layout of `JSONEncoder`'s `.prettyPrinted` (two-space
/// indent, `"key" : value`, slashes not escaped), members in the order they are written.
///
/// For the files the daemon writes many times per release (records), and for everything the
/// CLI prints with `--json`: `JSONEncoder` goes through `Encodable`'s boxed containers and a
/// dictionary per object, which cost more than spawning a task process, and its key order is
/// not fixed; this appends bytes, and the same value always gives the same text. Strings are escaped as JSON requires
/// (`"`, `\`, control characters); everything else, non-ASCII included, is copied as UTF-8.
public struct PrettyJSONWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    /// Per open container: whether it has a member yet.
    private var open: [Bool] = []

    public init(capacity: Int = 1024) {
        bytes.reserveCapacity(capacity)
    }

    public mutating func beginObject() {
        bytes.append(UInt8(ascii: "{"))
        open.append(false)
    }

    public mutating func endObject() { close(UInt8(ascii: "}")) }

    public mutating func beginArray() {
        bytes.append(UInt8(ascii: "["))
        open.append(false)
    }

    public mutating func endArray() { close(UInt8(ascii: "]")) }

    /// Starts an object member: `"name" : `; its value follows.
    public mutating func key(_ name: StaticString) {
        startMember()
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: " "), UInt8(ascii: ":"), UInt8(ascii: " ")])
    }

    /// Starts an object member whose name is not known in advance; its value follows.
    public mutating func key(_ name: String) {
        startMember()
        string(name)
        bytes.append(contentsOf: [UInt8(ascii: " "), UInt8(ascii: ":"), UInt8(ascii: " ")])
    }

    public mutating func bool(_ value: Bool) {
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    /// The text written so far.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// Starts an array element; its value follows.
    public mutating func element() { startMember() }

    public mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { utf8 in
            var start = 0
            for (i, b) in utf8.enumerated() where b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<i]))
                start = i + 1
                bytes.append(UInt8(ascii: "\\"))
                switch b {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(b)
                case 0x08: bytes.append(UInt8(ascii: "b"))
                case 0x09: bytes.append(UInt8(ascii: "t"))
                case 0x0A: bytes.append(UInt8(ascii: "n"))
                case 0x0C: bytes.append(UInt8(ascii: "f"))
                case 0x0D: bytes.append(UInt8(ascii: "r"))
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(b >> 4)], hex[Int(b & 15)]])
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    public mutating func string(_ s: String?) {
        if let s { string(s) } else { null() }
    }

    public mutating func int(_ v: some BinaryInteger) {
        bytes.append(contentsOf: String(v).utf8)
    }

    /// A finite number, as its shortest text (1.5).
    public mutating func double(_ v: Double) {
        bytes.append(contentsOf: (v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)).utf8)
    }

    public mutating func null() {
        bytes.append(contentsOf: [UInt8(ascii: "n"), UInt8(ascii: "u"), UInt8(ascii: "l"), UInt8(ascii: "l")])
    }

    private mutating func startMember() {
        if open[open.count - 1] { bytes.append(UInt8(ascii: ",")) }
        open[open.count - 1] = true
        newline(depth: open.count)
    }

    private mutating func close(_ bracket: UInt8) {
        if open.removeLast() { newline(depth: open.count) }
        bytes.append(bracket)
    }

    private mutating func newline(depth: Int) {
        bytes.append(UInt8(ascii: "\n"))
        bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * depth))
    }
}
