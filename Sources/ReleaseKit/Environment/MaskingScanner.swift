/// Where a `MaskingScanner` puts the masked text, in order.
protocol MaskedOutput {
    /// Bytes of the text that are part of no secret.
    mutating func append(plain bytes: UnsafeRawBufferPointer)
    /// The mask that stands for one run of secrets (one secret, or several that overlap).
    mutating func appendMask()
}

/// Masks a stream of text fed in pieces of any size, the same whatever the pieces: every
/// byte that is part of an occurrence of a secret is masked, and each run of overlapping
/// occurrences becomes one mask (occurrences that only touch stay separate masks, as
/// `secretsecret` gives `******`).
///
/// So a secret containing another is masked whole, and where two secrets overlap
/// (`…abcd` + `cdef…`) neither is left partly visible: this is the union of all occurrences,
/// which masks at least as much as masking the longest secret first and then the others.
///
/// **What is held back, and why it is enough.** After each byte the automaton's state is the
/// longest suffix of the text that is still the start of some secret; its length is the
/// state's depth `d`. Any occurrence that ends later starts within those last `d` bytes, so
/// every byte before them is decided: it is plain, or it is covered by an occurrence already
/// found. Only the last `d` bytes (at most the longest secret) are held back. A run of
/// occurrences gets its mask once it starts before them (no later occurrence can start
/// earlier) and is closed once it ends before them (no later occurrence can overlap it).
/// Nothing that could turn out to be part of a secret is ever given out as plain text,
/// however the text is cut.
///
/// Time: linear in the text (one automaton step a byte, plus amortised constant work per
/// occurrence found), whatever the number of secrets. Memory: the held-back bytes, at most
/// the longest secret between calls.
struct MaskingScanner: Sendable {
    private struct Run: Sendable {
        var start: Int
        var end: Int
    }

    /// Decided bytes are given out once this many have gathered (and at the end of every
    /// call), so that plain text goes out in slices rather than a byte at a time.
    private static let drainThreshold = 4096

    private let automaton: MaskingAutomaton
    private var state = MaskingAutomaton.root
    /// Bytes read since the start (or the last `finish`).
    private var position = 0
    /// Bytes before this position have been given out, as plain text or inside a mask.
    private var emitted = 0
    /// Held-back bytes: `pending[i]` is the byte at position `pendingBase + i`; only those at
    /// `emitted` and after are still needed.
    private var pending: [UInt8] = []
    private var pendingBase = 0
    /// Runs of overlapping occurrences not yet closed, in order, from `runs[runsHead]`.
    private var runs: [Run] = []
    private var runsHead = 0
    /// Whether the mask of `runs[runsHead]` has been given.
    private var announced = false

    init(automaton: MaskingAutomaton) {
        self.automaton = automaton
    }

    /// The bytes held back: at most the longest secret between calls.
    var heldBackCount: Int { position - emitted }

    /// Reads `text`, giving out every byte that is now decided.
    mutating func scan<Output: MaskedOutput>(_ text: UnsafeRawBufferPointer, into output: inout Output) {
        let textStart = position
        let automaton = automaton
        var decided = emitted
        for i in 0..<text.count {
            state = automaton.next(state, text[i])
            let end = textStart + i
            let length = automaton.matchLength(state)
            if length > 0 { addOccurrence(start: end + 1 - length, end: end) }
            decided = end + 1 - automaton.depth(state)
            if decided - emitted >= Self.drainThreshold {
                drain(upTo: decided, text: text, textStart: textStart, into: &output)
            }
        }
        position = textStart + text.count
        drain(upTo: decided, text: text, textStart: textStart, into: &output)
        keep(text, textStart: textStart)
    }

    /// The end of the text (or of a line, for a caller that masks line by line): gives out
    /// everything held back and starts afresh.
    mutating func finish<Output: MaskedOutput>(into output: inout Output) {
        drain(upTo: position, text: UnsafeRawBufferPointer(start: nil, count: 0), textStart: position, into: &output)
        state = MaskingAutomaton.root
        position = 0
        emitted = 0
        pending.removeAll(keepingCapacity: pending.capacity <= 1 << 16)
        pendingBase = 0
        runs.removeAll(keepingCapacity: runs.capacity <= 1 << 12)
        runsHead = 0
        announced = false
    }

    /// Records an occurrence of a secret at `start...end`, merging it with the runs it
    /// overlaps. Runs are disjoint and in order, and `end` is past all of them, so only runs
    /// at the back can overlap: each run is merged away at most once.
    private mutating func addOccurrence(start: Int, end: Int) {
        var start = start
        while runs.count > runsHead, let last = runs.last, last.end >= start {
            start = min(start, last.start)
            runs.removeLast()
        }
        runs.append(Run(start: start, end: end))
    }

    /// Gives out the bytes before `limit`, which no later occurrence can reach.
    private mutating func drain<Output: MaskedOutput>(upTo limit: Int, text: UnsafeRawBufferPointer, textStart: Int, into output: inout Output) {
        while emitted < limit {
            guard runsHead < runs.count else {
                give(emitted..<limit, text: text, textStart: textStart, into: &output)
                emitted = limit
                break
            }
            let run = runs[runsHead]
            if emitted < run.start {
                let stop = min(run.start, limit)
                give(emitted..<stop, text: text, textStart: textStart, into: &output)
                emitted = stop
                continue
            }
            // The run starts before `limit`: no later occurrence can start before it, so its
            // start is final and its mask can be given.
            if !announced {
                output.appendMask()
                announced = true
            }
            if run.end < limit {
                // No later occurrence can overlap it: closed.
                emitted = run.end + 1
                runsHead += 1
                announced = false
            } else {
                emitted = limit
            }
        }
    }

    /// Gives out positions `range` as plain text, from the held-back bytes or from `text`.
    private func give<Output: MaskedOutput>(_ range: Range<Int>, text: UnsafeRawBufferPointer, textStart: Int, into output: inout Output) {
        if range.lowerBound < textStart {
            let upper = min(range.upperBound, textStart)
            pending.withUnsafeBytes { p in
                output.append(plain: p.bytes((range.lowerBound - pendingBase)..<(upper - pendingBase)))
            }
        }
        if range.upperBound > textStart {
            let lower = max(range.lowerBound, textStart)
            output.append(plain: text.bytes((lower - textStart)..<(range.upperBound - textStart)))
        }
    }

    /// Keeps the bytes of `text` not yet given out, and lets go of the held-back bytes that
    /// were (amortised: the buffer is compacted once half of it is spent).
    private mutating func keep(_ text: UnsafeRawBufferPointer, textStart: Int) {
        if emitted >= textStart {
            pending.removeAll(keepingCapacity: true)
            pendingBase = emitted
            pending.append(contentsOf: text.bytes((emitted - textStart)..<text.count))
        } else {
            pending.append(contentsOf: text)
            let spent = emitted - pendingBase
            if spent > pending.count / 2 {
                pending.removeFirst(spent)
                pendingBase = emitted
            }
        }
        if runsHead == runs.count {
            runs.removeAll(keepingCapacity: true)
            runsHead = 0
        } else if runsHead > runs.count / 2 {
            runs.removeFirst(runsHead)
            runsHead = 0
        }
    }
}

extension UnsafeRawBufferPointer {
    /// The bytes at `range` (within `0 ..< count`): `UnsafeRawBufferPointer(rebasing:)`
    /// without the generic slice, which a debug build pays for on every call.
    @inline(__always)
    func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        assert(range.lowerBound >= 0 && range.upperBound <= count)
        return UnsafeRawBufferPointer(start: baseAddress.map { $0 + range.lowerBound }, count: range.count)
    }
}
