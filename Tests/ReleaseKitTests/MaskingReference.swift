// Slow, obviously correct models of masking and of line splitting, for the masking tests to
// compare the real ones with (their randomized inputs come from ReleaseSupport's
// `SeededGenerator`, so that failures reproduce).

import ReleaseSupport

/// One piece of masked text: a byte of plain text, or a mask.
enum MaskedToken: Equatable {
    case byte(UInt8)
    case mask
}

enum MaskingReference {
    /// Where the secrets occur in `text`, by brute force: every occurrence of every secret.
    static func occurrences(_ text: [UInt8], secrets: [[UInt8]]) -> [ClosedRange<Int>] {
        var found: [ClosedRange<Int>] = []
        for secret in secrets where !secret.isEmpty && secret.count <= text.count {
            for start in 0...(text.count - secret.count) where text[start..<(start + secret.count)].elementsEqual(secret) {
                found.append(start...(start + secret.count - 1))
            }
        }
        return found
    }

    /// Which bytes of `text` are part of an occurrence of a secret.
    static func covered(_ text: [UInt8], secrets: [[UInt8]]) -> [Bool] {
        var covered = [Bool](repeating: false, count: text.count)
        for range in occurrences(text, secrets: secrets) { for i in range { covered[i] = true } }
        return covered
    }

    /// `text` masked: the union of all occurrences, each run of overlapping ones one mask
    /// (runs that only touch stay separate).
    static func mask(_ text: [UInt8], secrets: [[UInt8]]) -> [MaskedToken] {
        var runs: [ClosedRange<Int>] = []
        for range in occurrences(text, secrets: secrets).sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = runs.last, range.lowerBound <= last.upperBound {
                runs[runs.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
            } else {
                runs.append(range)
            }
        }
        var tokens: [MaskedToken] = []
        var i = 0
        var next = 0
        while i < text.count {
            if next < runs.count, runs[next].lowerBound == i {
                tokens.append(.mask)
                i = runs[next].upperBound + 1
                next += 1
            } else {
                tokens.append(.byte(text[i]))
                i += 1
            }
        }
        return tokens
    }

    static func bytes(_ tokens: [MaskedToken]) -> [UInt8] {
        tokens.flatMap { token -> [UInt8] in
            switch token {
            case .byte(let b): [b]
            case .mask: Array("***".utf8)
            }
        }
    }

    /// The lines `MaskedLineSplitter` must give for `stream`: each line masked whole, then cut
    /// into pieces of at most `maximum` bytes (a mask never cut), a trailing `\r` dropped.
    static func lines(_ stream: [UInt8], secrets: [[UInt8]], maximum: Int) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        func emit(_ piece: [UInt8]) {
            lines.append(piece.last == UInt8(ascii: "\r") ? Array(piece.dropLast()) : piece)
        }
        var segments = stream.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
        let last = segments.removeLast()  // after the last newline: unfinished (maybe empty)
        for (index, segment) in (segments + [last]).enumerated() {
            var piece: [UInt8] = []
            for token in mask(segment, secrets: secrets) {
                switch token {
                case .byte(let b):
                    piece.append(b)
                case .mask:
                    if piece.count + 3 > maximum, !piece.isEmpty { emit(piece); piece = [] }
                    piece += Array("***".utf8)
                }
                if piece.count >= maximum { emit(piece); piece = [] }
            }
            if index < segments.count || !piece.isEmpty { emit(piece) }
        }
        return lines
    }
}

/// `ReleaseLog`'s line splitting before `MaskedLineSplitter`, transcribed (for output with no
/// secrets, whose lines must not change).
struct FormerReleaseLogSplitter {
    let maximum: Int
    private var partial: [UInt8] = []

    init(maximum: Int) { self.maximum = maximum }

    mutating func output(_ chunk: [UInt8]) -> [[UInt8]] {
        let data = partial + chunk
        partial = []
        var lines: [Range<Int>] = []
        var start = 0
        while start < data.count {
            let span = min(data.count - start, maximum)
            if let newline = data[start..<(start + span)].firstIndex(of: UInt8(ascii: "\n")) {
                lines.append(start..<newline)
                start = newline + 1
            } else if span == maximum {
                lines.append(start..<(start + span))
                start += span
            } else {
                break
            }
        }
        if start < data.count { partial = Array(data[start...]) }
        return lines.map { Self.trim(data[$0]) }
    }

    mutating func flush() -> [[UInt8]] {
        defer { partial = [] }
        return partial.isEmpty ? [] : [Self.trim(partial[...])]
    }

    private static func trim(_ line: ArraySlice<UInt8>) -> [UInt8] {
        line.last == UInt8(ascii: "\r") ? Array(line.dropLast()) : Array(line)
    }
}

/// What no masked output may show, checked without the models above.
enum LeakCheck {
    /// The input with every occurrence of a secret taken out: the pieces of plain text.
    static func cleanFragments(_ stream: [UInt8], secrets: [[UInt8]]) -> [[UInt8]] {
        var fragments: [[UInt8]] = []
        for line in stream.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            let line = Array(line)
            let covered = MaskingReference.covered(line, secrets: secrets)
            var fragment: [UInt8] = []
            for (b, c) in zip(line, covered) {
                if c {
                    if !fragment.isEmpty { fragments.append(fragment); fragment = [] }
                } else {
                    fragment.append(b)
                }
            }
            if !fragment.isEmpty { fragments.append(fragment) }
        }
        return fragments
    }

    /// Problems with `lines`: a secret in a line, or a piece of four or more bytes of a secret
    /// that is not in the plain text of the input (so it can only come from a secret).
    ///
    /// For each line and secret, every alignment of a common substring is extended as far as
    /// it goes both ways; if that longest one is in a clean fragment, so is every part of it,
    /// so checking the longest ones checks all.
    static func problems(_ lines: [[UInt8]], stream: [UInt8], secrets: [[UInt8]]) -> [String] {
        let fragments = cleanFragments(stream, secrets: secrets)
        func inPlainText(_ w: ArraySlice<UInt8>) -> Bool {
            fragments.contains { f in f.count >= w.count && (0...(f.count - w.count)).contains { f[$0..<($0 + w.count)].elementsEqual(w) } }
        }
        var problems: [String] = []
        for secret in secrets where !secret.contains(UInt8(ascii: "\n")) {
            var positions = [[Int]](repeating: [], count: 256)
            for (j, b) in secret.enumerated() { positions[Int(b)].append(j) }
            for (n, line) in lines.enumerated() {
                if !MaskingReference.occurrences(line, secrets: [secret]).isEmpty {
                    problems.append("line \(n) shows the secret \(show(secret[...])): \(show(line[...]))")
                    continue
                }
                for i in line.indices {
                    for j in positions[Int(line[i])] where i == 0 || j == 0 || line[i - 1] != secret[j - 1] {
                        var length = 0
                        while i + length < line.count, j + length < secret.count, line[i + length] == secret[j + length] { length += 1 }
                        if length >= 4, !inPlainText(line[i..<(i + length)]) {
                            problems.append("line \(n) shows \(show(line[i..<(i + length)])) of the secret \(show(secret[...])): \(show(line[...]))")
                        }
                    }
                }
            }
        }
        return problems
    }

    static func show(_ bytes: ArraySlice<UInt8>) -> String {
        let s = String(decoding: bytes, as: UTF8.self)
        return s.count > 80 ? "\"\(s.prefix(40))…\(s.suffix(30))\" (\(bytes.count) bytes)" : "\"\(s)\""
    }
}
