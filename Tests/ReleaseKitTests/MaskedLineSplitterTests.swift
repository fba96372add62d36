import ReleaseKit
import ReleaseSupport
import Testing

/// Task output is masked before it is cut into lines, so no secret is ever split by a cut, a
/// chunk or a batch; with nothing to mask, lines are what ReleaseLog always made.
@Suite("masked line splitter")
struct MaskedLineSplitterTests {
    static let releaseLogMaximum = 64 * 1024

    /// The lines of `stream` fed in chunks of `chunks` bytes, checking each batch's layout and
    /// the memory bound on the way.
    static func run(_ masking: Masking, maximum: Int, _ stream: [UInt8], chunks: [Int], prefix: [UInt8] = []) -> (lines: [[UInt8]], problems: [String]) {
        var splitter = MaskedLineSplitter(masking: masking, maximumLineLength: maximum, linePrefix: prefix)
        let bound = max(maximum, 3) - 1 + (masking.secrets.map(\.count).max() ?? 0)
        var lines: [[UInt8]] = []
        var problems: [String] = []
        func take(_ batch: MaskedLineSplitter.Lines) {
            var layout: [UInt8] = []
            for i in 0..<batch.count {
                lines.append(Array(batch[i]))
                layout.append(contentsOf: prefix)
                layout.append(contentsOf: batch[i])
                layout.append(UInt8(ascii: "\n"))
            }
            if batch.bytes != layout { problems.append("a batch is not prefix + line + \\n for each line") }
        }
        var offset = 0
        for size in chunks {
            let end = min(offset + size, stream.count)
            take(stream[offset..<end].withUnsafeBytes { splitter.feed($0) })
            offset = end
            if splitter.bufferedByteCount > bound { problems.append("\(splitter.bufferedByteCount) bytes held, over \(bound)") }
        }
        take(splitter.finish())
        if splitter.bufferedByteCount != 0 { problems.append("bytes left after finish") }
        return (lines, problems)
    }

    static func chunkings(_ count: Int, splitsAt points: some Sequence<Int> = [], random: Int = 0, using rng: inout SeededGenerator) -> [[Int]] {
        var all: [[Int]] = [[count], [Int](repeating: 1, count: count)]
        for p in points where p >= 0 && p <= count { all.append([p, count - p]) }
        for _ in 0..<random {
            var sizes: [Int] = []
            var left = count
            while left > 0 {
                let n = min(left, Int.random(in: 1...max(1, min(count, 40)), using: &rng))
                sizes.append(n)
                left -= n
            }
            all.append(sizes)
        }
        return all
    }

    static func text(_ lines: [[UInt8]]) -> [String] { lines.map { String(decoding: $0, as: UTF8.self) } }

    /// Records an issue if `lines` are not `expected`, showing long lines shortened.
    static func expect(_ lines: [[UInt8]], _ expected: [[UInt8]], _ context: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard lines != expected else { return }
        Issue.record("\(context): \(lines.map { LeakCheck.show($0[...]) }), expected \(expected.map { LeakCheck.show($0[...]) })",
                     sourceLocation: sourceLocation)
    }

    @Test("issue 17: a secret straddling the 64 KiB cut is masked, however the output comes")
    func issue17() {
        let secret = "SUPERSECRET123"
        let masking = Masking(env: ["API_TOKEN": secret])
        let stream = [UInt8](repeating: UInt8(ascii: "x"), count: 65_530) + Array(secret.utf8) + [UInt8(ascii: "\n")]
        let expected = [[UInt8](repeating: UInt8(ascii: "x"), count: 65_530) + Array("***".utf8)]
        var rng = SeededGenerator(seed: 17)
        var chunkings = Self.chunkings(stream.count, splitsAt: 65_515...65_550, random: 3, using: &rng)
        chunkings.append([Self.releaseLogMaximum, stream.count - Self.releaseLogMaximum])
        for chunks in chunkings {
            let (lines, problems) = Self.run(masking, maximum: Self.releaseLogMaximum, stream, chunks: chunks)
            Self.expect(lines, expected, "chunks \(chunks.count == 1 ? "\(chunks)" : "\(chunks.prefix(3))… (\(chunks.count))")")
            #expect(problems.isEmpty, "\(problems)")
        }
    }

    @Test("issue 17: a secret at every offset around the 64 KiB cut, split at every offset around it")
    func aroundTheCut() {
        let secret = Array("SUPERSECRET123".utf8)
        let masking = Masking(env: ["API_TOKEN": String(decoding: secret, as: UTF8.self)])
        let cut = Self.releaseLogMaximum
        var rng = SeededGenerator(seed: 1717)
        var cases = 0
        for before in (cut - secret.count - 2)...(cut + 2) {
            let stream = [UInt8](repeating: UInt8(ascii: "x"), count: before) + secret + Array("yz\n".utf8)
            let expected = MaskingReference.lines(stream, secrets: [secret], maximum: cut)
            #expect(expected.allSatisfy { $0.count <= cut })
            #expect(LeakCheck.problems(expected, stream: stream, secrets: [secret]).isEmpty)
            // Split at the cut, and at the secret's start, end and middle (every split offset,
            // at a smaller maximum, is `everyOffset`'s work).
            let splits = [cut - 1, cut, cut + 1, before - 1, before, before + secret.count / 2, before + secret.count - 1, before + secret.count]
            for chunks in Self.chunkings(stream.count, splitsAt: splits, using: &rng).dropFirst(2) {
                let (lines, problems) = Self.run(masking, maximum: cut, stream, chunks: chunks)
                cases += 1
                Self.expect(lines, expected, "secret at \(before), chunks \(chunks)")
                #expect(problems.isEmpty, "\(problems)")
            }
        }
        print("masked line splitter: \(cases) cases of a secret around the 64 KiB cut")
        // The masked line is over the maximum: the mask goes whole into the next piece.
        let stream = [UInt8](repeating: UInt8(ascii: "x"), count: cut - 1) + secret + [UInt8(ascii: "\n")]
        let (lines, _) = Self.run(masking, maximum: cut, stream, chunks: [cut, stream.count - cut])
        Self.expect(lines, [[UInt8](repeating: UInt8(ascii: "x"), count: cut - 1), Array("***".utf8)], "a mask with no room left")
    }

    @Test("a secret longer than a line's maximum is held back whole and masked")
    func secretLongerThanALine() {
        var rng = SeededGenerator(seed: 70_000)
        let letters = Array("abcdefghij".utf8)
        let secret = (0..<70_000).map { _ in letters[Int.random(in: 0..<letters.count, using: &rng)] }
        let masking = Masking(env: ["BIG_KEY": String(decoding: secret, as: UTF8.self)])
        let stream = Array("start ".utf8) + secret + Array(" end\n".utf8) + secret.prefix(69_999) + Array("|\n".utf8)
        let maximum = Self.releaseLogMaximum
        var expected: [[UInt8]] = [Array("start *** end".utf8)]
        expected.append(Array(secret.prefix(maximum)))
        expected.append(Array(secret[maximum..<69_999]) + Array("|".utf8))
        for chunks in [[maximum, maximum, stream.count - 2 * maximum], [4096] + [Int](repeating: 4096, count: stream.count / 4096)] {
            let (lines, problems) = Self.run(masking, maximum: maximum, stream, chunks: chunks)
            Self.expect(lines, expected, "chunks \(chunks.prefix(3))…")
            #expect(problems.isEmpty, "\(problems)")
        }
    }

    @Test("lines: \\n ends a line, one \\r before it goes, an unfinished last line comes at the end")
    func lines() {
        let masking = Masking(env: ["DB_PASSWORD": "hunter22"])
        var splitter = MaskedLineSplitter(masking: masking, maximumLineLength: 10, linePrefix: Array("       ".utf8))
        let batch = splitter.feed(Array("one\r\n\ntwo hunter22\nthree is long\r\r\nlast hunt".utf8))
        #expect((0..<batch.count).map(batch.string) == ["one", "", "two ***", "three is l", "ong\r"])
        #expect(batch.bytes == Array("       one\n       \n       two ***\n       three is l\n       ong\r\n".utf8))
        #expect(splitter.bufferedByteCount == "last hunt".utf8.count, "last (unfinished), hunt (could start hunter22)")
        let end = splitter.feed(Array("er22".utf8))
        #expect(end.isEmpty)
        let rest = splitter.finish()
        #expect((0..<rest.count).map(rest.string) == ["last ***"])
        #expect(splitter.finish().isEmpty, "finish twice gives nothing more")
        #expect(splitter.feed(Array("again\n".utf8)).string(0) == "again", "ready for a new stream")
        var lone = MaskedLineSplitter(masking: .none, maximumLineLength: 10)
        #expect(lone.feed(Array("\r".utf8)).isEmpty)
        let last = lone.finish()
        #expect(last.count == 1 && last.string(0) == "", "a lone \\r at the end is an empty line, as before")
    }

    @Test("a secret of several lines, printed as it is, is masked line by line")
    func multiLineSecret() {
        for end in ["\n", "\r\n"] {
            let pem = ["-----BEGIN KEY-----", "MIIEvQIBADANBgkqhkiG", "9w0BAQEFAASC", "-----END KEY-----"].joined(separator: end)
            let masking = Masking(env: ["TLS_KEY": pem])
            let stream = Array("key:\n\(pem)\ndone\n".utf8)
            var rng = SeededGenerator(seed: 3)
            for chunks in Self.chunkings(stream.count, random: 5, using: &rng) {
                let (lines, _) = Self.run(masking, maximum: 8, stream, chunks: chunks)
                #expect(Self.text(lines) == ["key:", "***", "***", "***", "***", "done"])
            }
        }
    }

    @Test("with no secrets, lines are exactly ReleaseLog's before, batch for batch")
    func unchangedWithoutSecrets() {
        var cases = 0
        for seed in UInt64(1)...300 {
            var rng = SeededGenerator(seed: seed)
            let maximum = Int.random(in: 1...12, using: &rng)
            var stream: [UInt8] = []
            for _ in 0..<Int.random(in: 0...12, using: &rng) {
                switch Int.random(in: 0..<5, using: &rng) {
                case 0: stream += [UInt8](repeating: UInt8(ascii: "a"), count: Int.random(in: 0...(3 * maximum), using: &rng))
                case 1: stream += [UInt8](repeating: UInt8(ascii: "b"), count: maximum) + [UInt8(ascii: "\n")]
                case 2: stream += Array("\r\n".utf8)
                case 3: stream += [UInt8](repeating: UInt8(ascii: "c"), count: max(0, maximum - 1)) + Array("\r".utf8)
                default: stream += [UInt8(ascii: "\n"), 0xFF, UInt8(ascii: "*")]
                }
            }
            let effective = max(maximum, 3)
            for chunks in Self.chunkings(stream.count, random: 4, using: &rng) {
                var former = FormerReleaseLogSplitter(maximum: effective)
                var splitter = MaskedLineSplitter(masking: .none, maximumLineLength: maximum)
                var offset = 0
                cases += 1
                for size in chunks + [0] {
                    let chunk = Array(stream[offset..<(offset + size)])
                    offset += size
                    let expected = size == 0 ? former.flush() : former.output(chunk)
                    let batch = size == 0 ? splitter.finish() : splitter.feed(chunk)
                    let got = (0..<batch.count).map { Array(batch[$0]) }
                    if got != expected {
                        Issue.record("seed \(seed), maximum \(effective), chunks \(chunks): \(Self.text(got)) instead of \(Self.text(expected))")
                        return
                    }
                }
            }
        }
        print("masked line splitter: \(cases) chunked streams without secrets split as before")
    }

    /// Secrets that overlap, contain and start each other, and a URL with a percent-encoded
    /// password (masked whole, raw and decoded).
    static let propertyEnv = ["A_TOKEN": "abcdefgh", "B_TOKEN": "efghijkl", "C_TOKEN": "xabcdefghy", "D_TOKEN": "abcd",
                              "CACHE_URL": "redis://u:p%40ss%24wd@h/0"]
    /// What Masking must find in `propertyEnv`.
    static let propertySecrets = ["abcdefgh", "efghijkl", "xabcdefghy", "abcd", "redis://u:p%40ss%24wd@h/0", "p%40ss%24wd", "p@ss$wd"]

    @Test("property: each secret at every offset around each cut, split at every offset (every chunk boundary)")
    func everyOffset() {
        let masking = Masking(env: Self.propertyEnv)
        let secrets = Self.propertySecrets.map { Array($0.utf8) }
        #expect(Set(masking.secrets) == Set(secrets))
        var cases = 0
        var rng = SeededGenerator(seed: 0)
        for maximum in [3, 7, 13] {
            for secret in secrets {
                // Fillers: neutral, near misses of the secrets, a near miss of the encoded password.
                for filler in [".", "abcdefg", "p%40ss%2"] {
                    func fill(_ n: Int) -> [UInt8] { Array(String(repeating: filler, count: n).utf8.prefix(n)) }
                    for offset in 0..<(2 * maximum + secret.count + 2) {
                        let stream = fill(offset) + secret + fill(3) + [UInt8(ascii: "\n")] + secret + Array("\r\n".utf8)
                            + fill(offset % maximum) + secret
                        let expected = MaskingReference.lines(stream, secrets: secrets, maximum: maximum)
                        for (n, chunks) in Self.chunkings(stream.count, splitsAt: 0...stream.count, using: &rng).enumerated() {
                            let (lines, problems) = Self.run(masking, maximum: maximum, stream, chunks: chunks)
                            cases += 1
                            let leaks = n == 0 || lines != expected ? LeakCheck.problems(lines, stream: stream, secrets: secrets) : []
                            if lines != expected || !problems.isEmpty || !leaks.isEmpty {
                                Issue.record("""
                                    maximum \(maximum), stream \(LeakCheck.show(stream[...])), chunks \(chunks): \(Self.text(lines)), \
                                    expected \(Self.text(expected)); \(problems + leaks)
                                    """)
                                return
                            }
                        }
                    }
                }
            }
        }
        print("masked line splitter: \(cases) cases of secrets at every offset around cuts and chunk boundaries")
    }

    @Test("property: random output and random secrets (overlapping, containing, multi-line, URL-encoded), random chunkings")
    func randomStreams() {
        var cases = 0
        let baseSeed = UInt64(20_250_601)
        for seed in baseSeed..<(baseSeed + 1000) {
            var rng = SeededGenerator(seed: seed)
            let alphabet = Array("abcdab%4-".utf8)
            func word(_ range: ClosedRange<Int>) -> [UInt8] {
                (0..<Int.random(in: range, using: &rng)).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] }
            }
            func trimmed(_ line: ArraySlice<UInt8>) -> [UInt8] {
                let blank: Set<UInt8> = [0x20, 0x09, 0x0D, 0x0A]
                return Array(line.drop(while: blank.contains).reversed().drop(while: blank.contains).reversed())
            }
            var env: [String: String] = [:]
            var secrets = Set<[UInt8]>()
            var bases: [[UInt8]] = []
            for i in 0..<Int.random(in: 1...5, using: &rng) {
                let base = bases.randomElement(using: &rng) ?? word(5...5)
                var value: [UInt8]
                switch Int.random(in: 0..<6, using: &rng) {
                case 0: value = word(3...10)
                case 1: value = Array(base.suffix(3)) + word(1...5)
                case 2: value = word(1...2) + base + word(0...2)
                case 3: value = Array(base.prefix(max(3, base.count - 2)))
                case 4:
                    value = word(3...6) + Array((Bool.random(using: &rng) ? "\n" : "\r\n").utf8) + word(2...6) + Array("\n ".utf8) + base
                default:
                    var raw: [UInt8] = []
                    var decoded: [UInt8] = []
                    for _ in 0..<Int.random(in: 2...5, using: &rng) {
                        switch Int.random(in: 0..<4, using: &rng) {
                        case 0: raw += Array("%24".utf8); decoded += Array("$".utf8)
                        case 1: raw += Array("%40".utf8); decoded += Array("@".utf8)
                        case 2: raw += Array("%3A".utf8); decoded += Array(":".utf8)
                        default: let w = word(1...3).filter { $0 != UInt8(ascii: "%") }; raw += w; decoded += w
                        }
                    }
                    value = Array("redis://u:".utf8) + raw + Array("@h:1/0".utf8)
                    secrets.insert(raw)
                    secrets.insert(decoded)
                    env["S\(i)_URL"] = String(decoding: value, as: UTF8.self)
                    secrets.insert(value)
                    bases.append(raw)
                    continue
                }
                env["S\(i)_TOKEN"] = String(decoding: value, as: UTF8.self)
                secrets.insert(value)
                bases.append(value)
            }
            // A secret of several lines is also a secret line by line (a value made from a
            // multi-line base can have lines too).
            for value in secrets where value.contains(0x0A) {
                for line in value.split(separator: 0x0A) { secrets.insert(trimmed(line)) }
            }
            secrets = secrets.filter { $0.count >= Masking.minimumLength }
            let masking = Masking(env: env)
            if Set(masking.secrets) != secrets {
                Issue.record("seed \(seed): Masking found \(masking.secrets.map { LeakCheck.show($0[...]) }), expected \(secrets.map { LeakCheck.show($0[...]) })")
                return
            }
            let perLine = secrets.filter { !$0.contains(0x0A) }.sorted { $0.lexicographicallyPrecedes($1) }
            let multiLine = secrets.filter { $0.contains(0x0A) }.sorted { $0.lexicographicallyPrecedes($1) }
            let maximum = Int.random(in: 3...24, using: &rng)
            var stream: [UInt8] = []
            for _ in 0..<Int.random(in: 0...25, using: &rng) {
                let secret = perLine.randomElement(using: &rng) ?? []
                switch Int.random(in: 0..<7, using: &rng) {
                case 0: stream += word(0...(2 * maximum))
                case 1: stream += secret
                case 2: stream += secret.prefix(Int.random(in: 0...secret.count, using: &rng))
                case 3: stream += secret.suffix(Int.random(in: 0...secret.count, using: &rng))
                case 4: stream += multiLine.randomElement(using: &rng) ?? secret
                case 5: stream += Array(["\n", "\r\n", "\r"][Int.random(in: 0..<3, using: &rng)].utf8)
                default: stream += Bool.random(using: &rng) ? [0xFF] : Array("*".utf8)
                }
            }
            let prefix = Bool.random(using: &rng) ? Array("       ".utf8) : []
            let expected = MaskingReference.lines(stream, secrets: perLine, maximum: maximum)
            for (n, chunks) in Self.chunkings(stream.count, random: 4, using: &rng).enumerated() {
                let (lines, problems) = Self.run(masking, maximum: maximum, stream, chunks: chunks, prefix: prefix)
                cases += 1
                let leaks = n == 0 || lines != expected ? LeakCheck.problems(lines, stream: stream, secrets: perLine) : []
                if lines != expected || !problems.isEmpty || !leaks.isEmpty {
                    Issue.record("""
                        seed \(seed): maximum \(maximum), secrets \(perLine.map { LeakCheck.show($0[...]) }), \
                        stream \(LeakCheck.show(stream[...])), chunks \(chunks): \(Self.text(lines)), \
                        expected \(Self.text(expected)); \(problems + leaks)
                        """)
                    return
                }
            }
        }
        print("masked line splitter: \(cases) random chunked streams with secrets masked as the reference masks them")
    }

    @Test("issue 18: 990 secrets of 1,000 characters and 300 KB of output (the time is printed, not tested)")
    func manySecrets() {
        var rng = SeededGenerator(seed: 18)
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)
        func random(_ n: Int) -> [UInt8] { (0..<n).map { _ in letters[Int.random(in: 0..<letters.count, using: &rng)] } }
        let values = (0..<990).map { _ in random(1000) }
        let env = Dictionary(uniqueKeysWithValues: values.enumerated().map { ("S\($0.offset)_TOKEN", String(decoding: $0.element, as: UTF8.self)) })
        // Lines of random text with secrets and 999-byte near misses (the most held back).
        var stream: [UInt8] = []
        var expected: [[UInt8]] = []
        while stream.count < 300_000 {
            var line: [UInt8] = []
            var masked: [UInt8] = []
            for _ in 0..<Int.random(in: 1...12, using: &rng) {
                let text = random(Int.random(in: 0...2000, using: &rng))
                line += text
                masked += text
                let value = values[Int.random(in: 0..<990, using: &rng)]
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: line += value; masked += Array("***".utf8)
                case 1: line += value.prefix(999) + [UInt8(ascii: "|")]; masked += value.prefix(999) + [UInt8(ascii: "|")]
                default: break
                }
            }
            stream += line + [UInt8(ascii: "\n")]
            expected.append(masked)
        }
        let clock = ContinuousClock()
        let start = clock.now
        let masking = Masking(env: env)
        let built = clock.now
        var splitter = MaskedLineSplitter(masking: masking, maximumLineLength: Self.releaseLogMaximum)
        var lines: [[UInt8]] = []
        var offset = 0
        while offset < stream.count {
            let end = min(offset + 65_536, stream.count)
            let batch = stream[offset..<end].withUnsafeBytes { splitter.feed($0) }
            for i in 0..<batch.count { lines.append(Array(batch[i])) }
            offset = end
        }
        let finished = splitter.finish()
        let done = clock.now
        #expect(finished.isEmpty)
        #expect(lines.count == expected.count && lines == expected, "the 300 KB are masked as expected")
        print("masked line splitter: 990 secrets of 1,000 bytes built in \(built - start), \(stream.count) bytes masked in \(done - built)")
    }
}
