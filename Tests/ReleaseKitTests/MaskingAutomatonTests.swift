import ReleaseKit
import ReleaseSupport
import Testing

/// Masking with one automaton over all secrets: every byte of every occurrence masked, one
/// `***` per run of overlapping occurrences, in one pass whatever the number of secrets.
@Suite("masking automaton")
struct MaskingAutomatonTests {
    private func masking(_ secrets: [String]) -> Masking {
        var env: [String: String] = [:]
        for (i, s) in secrets.enumerated() { env["S\(i)_TOKEN"] = s }
        return Masking(env: env)
    }

    @Test("a secret containing another, either way round and at either end, is masked whole")
    func containment() {
        let m = masking(["abcdef", "cde", "abc", "def"])
        #expect(m.apply("xabcdefx") == "x***x")
        #expect(m.apply("abc-def-cde") == "***-***-***")
        #expect(m.apply("abcde") == "***", "abc and cde overlap: one run")
    }

    @Test("overlapping secrets are masked together, so neither is left partly visible")
    func overlapping() {
        let m = masking(["xab", "abcdef"])
        // Longest first used to give "x***" here, and "xab" + "cdef" leftmost first would
        // show "cdef": the union masks it all.
        #expect(m.apply("xabcdef") == "***")
        let n = masking(["zzzzab", "abcdefgh"])
        #expect(n.apply("--zzzzabcdefgh--") == "--***--", "longest first left zzzz of zzzzab")
    }

    @Test("secrets that only touch stay separate masks, and repeats overlapping themselves are one")
    func touchingAndRepeated() {
        let m = masking(["secret"])
        #expect(m.apply("secretsecret") == "******")
        #expect(m.apply("secretsecretsecret!") == "*********!")
        #expect(masking(["aaa"]).apply("aaaa aaaaaaa aa") == "*** *** aa")
        #expect(masking(["aba"]).apply("ababa abab") == "*** ***b")
    }

    @Test("failure links: near misses and secrets that are suffixes or prefixes of each other")
    func failureLinks() {
        let m = masking(["aaab", "aab", "abab", "bbb"])
        #expect(m.apply("aaaaaab") == "aaa***")
        #expect(m.apply("aaaaaa") == "aaaaaa")
        #expect(m.apply("ababab") == "***")
        #expect(m.apply("abbbab") == "a***ab")
        let p = masking(["password", "pass-word", "word"])
        #expect(p.apply("passwor pass-wor password swordfish") == "passwor pass-wor *** s***fish")
    }

    @Test("bytes that are not UTF-8 around a secret of bytes above 0x7F, with a near miss")
    func allBytes() {
        let high = String(decoding: [0xC3, 0xBF, 0xE2, 0x9C, 0x93, 0xF0, 0x9F, 0x94, 0x91], as: UTF8.self)
        let m = Masking(env: ["K_KEY": high])
        let noise: [UInt8] = [0x00, 0xFF, 0x80, 0x0D, 0x7F, 0xC3]
        var bytes = noise + Array(high.utf8) + noise
        #expect(m.apply(to: &bytes))
        #expect(bytes == noise + Array("***".utf8) + noise)
    }

    @Test("canonically equivalent secrets are both masked: their bytes differ")
    func canonicalEquivalence() {
        let composed = "caf\u{E9}-secret"
        let decomposed = "cafe\u{301}-secret"
        #expect(composed == decomposed)
        let m = Masking(env: ["A_TOKEN": composed, "B_TOKEN": decomposed])
        #expect(m.secrets.count == 2)
        var a = Array("1 \(composed) 2".utf8)
        var b = Array("1 ".utf8) + Array(decomposed.utf8) + Array(" 2".utf8)
        #expect(m.apply(to: &a) && a == Array("1 *** 2".utf8))
        #expect(m.apply(to: &b) && b == Array("1 *** 2".utf8))
    }

    @Test("a secret of several lines is masked whole in text, and line by line, \\r\\n line ends too")
    func multiLine() {
        let pem = "-----BEGIN KEY-----\r\nMIIEvQIBADANBg\r\n  kqhkiG9w0BAQEF \r\n-----END KEY-----"
        let m = Masking(env: ["TLS_KEY": pem])
        #expect(m.apply("key: \(pem).") == "key: ***.")
        #expect(m.apply("MIIEvQIBADANBg") == "***", "a line of a secret with \\r\\n line ends is a secret")
        #expect(m.apply("  kqhkiG9w0BAQEF  ") == "  ***  ", "trimmed of blanks")
        #expect(m.secrets.contains(Array("-----END KEY-----".utf8)))
    }

    @Test("over maximumSecretBytes of secrets, everything is masked (fail closed)")
    func failClosed() {
        let big = String(repeating: "s", count: Masking.maximumSecretBytes / 2 + 1)
        let m = Masking(env: ["A_TOKEN": big, "B_TOKEN": big + "t"])
        #expect(!m.isEmpty)
        #expect(m.apply("anything at all") == "***")
        #expect(m.apply("") == "")
        var splitter = MaskedLineSplitter(masking: m, maximumLineLength: 8)
        let lines = splitter.feed(Array("one\n\ntwo and more\n".utf8))
        #expect((0..<lines.count).map(lines.string) == ["***", "", "***", "***"])
    }

    @Test("property: apply masks exactly the union of all occurrences, as a brute-force search does")
    func matchesBruteForce() {
        var cases = 0
        for seed in UInt64(1)...400 {
            var rng = SeededGenerator(seed: seed)
            let alphabet = Array("abcab-".utf8)
            func word(_ n: Int) -> [UInt8] { (0..<n).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] } }
            var secrets: [[UInt8]] = []
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let base = secrets.randomElement(using: &rng) ?? word(4)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: secrets.append(word(Int.random(in: 3...8, using: &rng)))
                case 1: secrets.append(Array(base.suffix(2)) + word(Int.random(in: 1...4, using: &rng)))  // overlaps
                case 2: secrets.append(word(1) + base + word(1))  // contains
                default: secrets.append(Array(base.prefix(max(3, base.count - 1))))  // prefix of
                }
            }
            let env = Dictionary(uniqueKeysWithValues: secrets.enumerated().map { ("S\($0.offset)_TOKEN", String(decoding: $0.element, as: UTF8.self)) })
            let m = Masking(env: env)
            let kept = secrets.filter { $0.count >= Masking.minimumLength }
            for _ in 0..<10 {
                var text: [UInt8] = []
                for _ in 0..<Int.random(in: 0...8, using: &rng) {
                    text += Bool.random(using: &rng) ? word(Int.random(in: 0...5, using: &rng)) : (kept.randomElement(using: &rng) ?? [])
                }
                var got = text
                let changed = m.apply(to: &got)
                let expected = MaskingReference.bytes(MaskingReference.mask(text, secrets: kept))
                cases += 1
                if got != expected || changed != (expected != text) {
                    Issue.record("seed \(seed): \(LeakCheck.show(text[...])) masked as \(LeakCheck.show(got[...])), expected \(LeakCheck.show(expected[...])), secrets \(kept.map { LeakCheck.show($0[...]) })")
                    return
                }
            }
        }
        print("masking automaton: \(cases) random texts matched the brute-force masking")
    }

    @Test("990 secrets of 1,000 characters: every one is masked where it occurs")
    func manyLongSecrets() {
        var rng = SeededGenerator(seed: 990)
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)
        var env: [String: String] = [:]
        var values: [[UInt8]] = []
        for i in 0..<990 {
            let v = (0..<1000).map { _ in letters[Int.random(in: 0..<letters.count, using: &rng)] }
            values.append(v)
            env["S\(i)_TOKEN"] = String(decoding: v, as: UTF8.self)
        }
        let m = Masking(env: env)
        #expect(m.secrets.count == 990)
        var text: [UInt8] = []
        for i in stride(from: 0, to: 990, by: 7) { text += Array("<".utf8) + values[i] + Array(">".utf8) + values[i].prefix(999) }
        #expect(m.apply(to: &text))
        var expected: [UInt8] = []
        for i in stride(from: 0, to: 990, by: 7) { expected += Array("<***>".utf8) + values[i].prefix(999) }
        #expect(text == expected)
    }
}
