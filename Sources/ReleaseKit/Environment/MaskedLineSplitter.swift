import Glibc

/// Turns a task's raw output, fed in chunks of any size, into masked lines: the one place
/// task output is masked and cut, for every sink (the release log, the console, the journal,
/// later a cluster's output batches).
///
/// **Lines.** A line ends at `\n`, which is not part of it, and one `\r` before it is removed;
/// an unfinished last line is given by `finish()`. With nothing to mask, the lines are exactly
/// those `ReleaseLog` made before: a line of more than `maximumLineLength` bytes is cut into
/// pieces of `maximumLineLength` bytes (a piece is cut as soon as it is full, so a line of
/// exactly that length is followed by an empty one), a trailing `\r` is removed from every
/// piece, and the lines do not depend on how the output was chunked.
///
/// **Masked before cut.** Each line is masked whole, as if it had not been cut, and only the
/// masked text is cut, into pieces of at most `maximumLineLength` bytes of masked text (a
/// `***` is never cut: a piece that has no room for it ends before it). Bytes that could still
/// be the start of a secret are held back until it is known whether they are one, so no
/// secret is ever split across two pieces, or across two chunks, two batches, or any other
/// cut a sink makes in the lines, which are already masked.
///
/// **Newlines reset the masking.** Output is masked line by line, as it always was: a match
/// never spans a line end, so nothing is held back across one. That is safe because a
/// secret of several lines (a PEM key) is also a secret line by line (`Masking` adds each of
/// its lines, trimmed of blanks, as a secret of its own), and those are what match within a
/// line. A line of such a secret shorter than `Masking.minimumLength` is not masked, as a
/// secret that short never is.
///
/// **Bounds.** Time is linear in the output, whatever the number of secrets (one automaton
/// step a byte). Memory between calls is at most one unfinished piece (less than
/// `maximumLineLength` bytes) plus the held-back bytes (at most the longest secret), whatever
/// the task prints; a batch is about the size of what was held plus the chunk (masking never
/// lengthens text), with a prefix per line.
public struct MaskedLineSplitter: Sendable {
    /// Complete lines, in one buffer ready to be written with one write(2): each line is
    /// `linePrefix`, its text, then `\n`.
    public struct Lines: Sendable, Equatable {
        /// The lines, each as `linePrefix` + text + `\n`.
        public var bytes: [UInt8]
        /// Where each line's text (without the prefix and the `\n`) is in `bytes`.
        public var ranges: [Range<Int>]

        /// Lines from a buffer and the ranges of their texts in it.
        public init(bytes: [UInt8] = [], ranges: [Range<Int>] = []) {
            self.bytes = bytes
            self.ranges = ranges
        }

        /// The number of lines.
        public var count: Int { ranges.count }
        /// Whether there is no line.
        public var isEmpty: Bool { ranges.isEmpty }
        /// The text of line `i` (`0 ..< count`), masked.
        public subscript(i: Int) -> ArraySlice<UInt8> { bytes[ranges[i]] }
        /// The text of line `i` as a String (invalid UTF-8 repaired).
        public func string(_ i: Int) -> String { String(decoding: bytes[ranges[i]], as: UTF8.self) }
    }

    /// The most bytes of masked text a line may have (at least the length of `Masking.mask`).
    public let maximumLineLength: Int
    /// What comes before each line's text in `Lines.bytes` (the release log's indent).
    public let linePrefix: [UInt8]

    private let masksEverything: Bool
    private var scanner: MaskingScanner?
    /// `linePrefix` and the unfinished piece, masked (less than `maximumLineLength` bytes).
    /// Kept from call to call and only moved, not copied, while no line is complete, so that
    /// a task writing a byte at a time costs a constant a byte, not the piece's length.
    private var buffer: [UInt8]

    /// A splitter for one stream of output (one task's): `maximumLineLength` is raised to the
    /// length of `Masking.mask` if below it.
    public init(masking: Masking, maximumLineLength: Int, linePrefix: [UInt8] = []) {
        self.maximumLineLength = max(maximumLineLength, Masking.mask.utf8.count)
        self.linePrefix = linePrefix
        masksEverything = masking.masksEverything
        scanner = masking.automaton.map { MaskingScanner(automaton: $0) }
        buffer = linePrefix
    }

    /// Bytes held between calls: the unfinished piece and the bytes held back because they
    /// could be the start of a secret. At most `maximumLineLength - 1` plus the longest secret.
    public var bufferedByteCount: Int { buffer.count - linePrefix.count + (scanner?.heldBackCount ?? 0) }

    /// Reads a chunk of output; returns the lines it completes, masked. Linear in the chunk.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer) -> Lines {
        var output = takeOutput()
        var start = 0
        while start < chunk.count {
            let rest = chunk.bytes(start..<chunk.count)
            guard let base = rest.baseAddress, let newline = memchr(base, Int32(Masking.newline), rest.count) else {
                read(rest, into: &output)
                break
            }
            let length = UnsafeRawPointer(newline) - base
            read(rest.bytes(0..<length), into: &output)
            scanner?.finish(into: &output)
            output.endLine()
            start += length + 1
        }
        return give(output)
    }

    /// Reads a chunk of output; returns the lines it completes, masked.
    public mutating func feed(_ chunk: some Collection<UInt8>) -> Lines {
        if let lines = chunk.withContiguousStorageIfAvailable({ feed(UnsafeRawBufferPointer($0)) }) { return lines }
        return Array(chunk).withUnsafeBytes { feed($0) }
    }

    /// The end of the output: returns the unfinished last line (if the output did not end with
    /// a newline), masked. The splitter is then ready for a new stream.
    public mutating func finish() -> Lines {
        var output = takeOutput()
        scanner?.finish(into: &output)
        if output.hasUnfinishedLine { output.endLine() }
        return give(output)
    }

    private mutating func takeOutput() -> LineOutput {
        let output = LineOutput(buffer: buffer, prefix: linePrefix, maximum: maximumLineLength, masksEverything: masksEverything)
        buffer = []
        return output
    }

    private mutating func give(_ output: consuming LineOutput) -> Lines {
        let (lines, rest) = output.split()
        buffer = rest
        return lines
    }

    private mutating func read(_ text: UnsafeRawBufferPointer, into output: inout LineOutput) {
        if scanner != nil {
            scanner?.scan(text, into: &output)
        } else {
            output.append(plain: text)
        }
    }
}

/// Masked text cut into lines as it comes.
private struct LineOutput: MaskedOutput {
    /// Complete lines (prefix, text, `\n`), then the prefix and text of the line being made.
    private var bytes: [UInt8]
    private var ranges: [Range<Int>] = []
    /// Where the text of the line being made starts in `bytes` (after its prefix).
    private var lineStart: Int
    private let prefix: [UInt8]
    private let maximum: Int
    private let masksEverything: Bool

    /// Output that goes on from `buffer`: `prefix` and an unfinished piece.
    init(buffer: [UInt8], prefix: [UInt8], maximum: Int, masksEverything: Bool) {
        bytes = buffer
        lineStart = prefix.count
        self.prefix = prefix
        self.maximum = maximum
        self.masksEverything = masksEverything
    }

    private var lineLength: Int { bytes.count - lineStart }

    /// Whether the line being made has any text.
    var hasUnfinishedLine: Bool { lineLength > 0 }

    mutating func append(plain text: UnsafeRawBufferPointer) {
        var start = 0
        while start < text.count {
            let n = min(maximum - lineLength, text.count - start)
            bytes.append(contentsOf: text.bytes(start..<(start + n)))
            start += n
            if lineLength >= maximum { endLine() }
        }
    }

    mutating func appendMask() {
        let mask = Masking.mask.utf8
        if lineLength + mask.count > maximum, lineLength > 0 { endLine() }
        bytes.append(contentsOf: mask)
        if lineLength >= maximum { endLine() }
    }

    /// Ends the line being made (a `\n`, or a full piece): drops a trailing `\r`.
    mutating func endLine() {
        if lineLength > 0, bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        if masksEverything, lineLength > 0 {
            bytes.removeSubrange(lineStart...)
            bytes.append(contentsOf: Masking.mask.utf8)
        }
        ranges.append(lineStart..<bytes.count)
        bytes.append(Masking.newline)
        bytes.append(contentsOf: prefix)
        lineStart = bytes.count
    }

    /// The complete lines, and the rest (the prefix and the line being made) to go on from.
    /// Copies only the rest, and only when there are complete lines.
    consuming func split() -> (MaskedLineSplitter.Lines, [UInt8]) {
        guard !ranges.isEmpty else { return (MaskedLineSplitter.Lines(), bytes) }
        let restStart = lineStart - prefix.count
        let rest = Array(bytes[restStart...])
        bytes.removeSubrange(restStart...)
        return (MaskedLineSplitter.Lines(bytes: bytes, ranges: ranges), rest)
    }
}
