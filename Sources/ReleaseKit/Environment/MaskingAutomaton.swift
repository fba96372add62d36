/// An Aho–Corasick automaton over a set of secrets: finds, in one pass over the text, the
/// longest secret ending at each byte, whatever the number of secrets.
///
/// Time: building is linear in the total size of the secrets (no comparison of secrets, no
/// search for a child, no hashing); each step of `next(_:_:)` is amortised constant time (the failure links followed by a step are
/// paid for by the depth gained on earlier steps), so scanning is linear in the text.
///
/// Memory: 17 bytes a state (at most one state a byte of secret, plus the root), in a compact
/// sparse layout: states are numbered breadth first, so the children of a state are
/// consecutive states, found by a binary search of their labels between `firstChild[s]` and
/// `firstChild[s + 1]`. Only the root has a dense table of 256 transitions. A dense table per
/// state would cost 1 KiB a state, a gigabyte for a megabyte of secrets.
///
/// State numbers are `Int32`; `Masking` never builds an automaton over more than
/// `Masking.maximumSecretBytes` bytes, far below that limit.
struct MaskingAutomaton: Sendable {
    /// A state: the longest suffix of the text read so far that is a prefix of some secret.
    typealias State = Int32

    /// The state before any text (the empty prefix).
    static let root: State = 0

    /// Transitions of the root, one per byte (0 where no secret starts with the byte).
    private let rootNext: [Int32]
    /// The first child of each state, plus a last entry: children of `s` are the states in
    /// `firstChild[s] ..< firstChild[s + 1]`, in ascending order of their labels.
    private let firstChild: [Int32]
    /// The byte on the edge into each state (unused for the root).
    private let label: [UInt8]
    /// The failure link of each state: the state of its longest proper suffix that is a
    /// prefix of some secret.
    private let fail: [Int32]
    /// The length of each state's prefix.
    private let depths: [Int32]
    /// The length of the longest secret that is a suffix of each state's prefix, 0 if none.
    private let matchLengths: [Int32]

    /// The length of the longest secret (0 for none).
    let longestSecret: Int

    /// An automaton over `secrets` (empty ones are ignored; duplicates are allowed). The
    /// caller keeps their total size within `Int32` (`Masking.maximumSecretBytes`).
    init(secrets: [[UInt8]]) {
        // The trie, built a level at a time, which numbers its states breadth first: each
        // state of a level has the secrets that pass through it; they are sorted into its
        // children by their next byte (two passes, a counting sort over the few bytes seen).
        // The work is one step per byte of secret and the sorting of each state's labels:
        // linear, with no comparison of secrets and no search for a child.
        // (Plain `while` loops: a debug build pays for every generic iterator.)
        var firstChild: [Int32] = []
        var label: [UInt8] = [0]
        var parents: [Int32] = [0]
        var depths: [Int32] = [0]
        var isTerminal: [Bool] = [false]
        var longest = 0
        // The secrets through each state of the level, state after state: those of the
        // level's `k`th state are `members[bounds[k] ..< bounds[k + 1]]`.
        var members: [Int32] = []
        members.reserveCapacity(secrets.count)
        var i = 0
        while i < secrets.count {
            if !secrets[i].isEmpty { members.append(Int32(i)) }
            i += 1
        }
        var bounds: [Int] = [0, members.count]
        var levelStart = 0
        // Per byte, for the state being sorted: whether seen (`seenBy == state + 1`), how many
        // of its secrets go on with it, then where the next of them goes in `nextMembers`.
        var seenBy = [Int](repeating: 0, count: 256)
        var tally = [Int](repeating: 0, count: 256)
        var labels: [UInt8] = []
        var depth = 0
        while bounds.count > 1 {
            var nextMembers: [Int32] = []
            nextMembers.reserveCapacity(members.count)
            var nextBounds: [Int] = [0]
            let nextLevelStart = label.count
            var k = 0
            while k + 1 < bounds.count {
                let state = levelStart + k
                let lower = bounds[k]
                let upper = bounds[k + 1]
                k += 1
                firstChild.append(Int32(label.count))
                if upper - lower == 1 {
                    // One secret through this state (most states, past the first few bytes):
                    // at most one child, nothing to sort.
                    let m = members[lower]
                    if secrets[Int(m)].count > depth {
                        label.append(secrets[Int(m)][depth])
                        parents.append(Int32(state))
                        depths.append(Int32(depth + 1))
                        isTerminal.append(false)
                        nextMembers.append(m)
                        nextBounds.append(nextMembers.count)
                    } else {
                        isTerminal[state] = true
                        longest = max(longest, depth)
                    }
                    continue
                }
                labels.removeAll(keepingCapacity: true)
                var j = lower
                while j < upper {
                    let m = Int(members[j])
                    j += 1
                    guard secrets[m].count > depth else {
                        isTerminal[state] = true
                        longest = max(longest, depth)
                        continue
                    }
                    let b = Int(secrets[m][depth])
                    if seenBy[b] != state + 1 {
                        seenBy[b] = state + 1
                        tally[b] = 0
                        labels.append(UInt8(b))
                    }
                    tally[b] += 1
                }
                labels.sort()
                var offset = nextMembers.count
                for b in labels {
                    label.append(b)
                    parents.append(Int32(state))
                    depths.append(Int32(depth + 1))
                    isTerminal.append(false)
                    let n = tally[Int(b)]
                    tally[Int(b)] = offset
                    offset += n
                    nextBounds.append(offset)
                }
                nextMembers.append(contentsOf: repeatElement(0, count: offset - nextMembers.count))
                j = lower
                while j < upper {
                    let m = members[j]
                    j += 1
                    guard secrets[Int(m)].count > depth else { continue }
                    let b = Int(secrets[Int(m)][depth])
                    nextMembers[tally[b]] = m
                    tally[b] += 1
                }
            }
            members = nextMembers
            bounds = nextBounds
            levelStart = nextLevelStart
            depth += 1
        }
        let count = label.count
        firstChild.append(Int32(count))
        members = []
        bounds = []

        // Failure links, breadth first, so that every state's link (which is shallower) is
        // known before it is needed. The standard argument bounds the links followed while
        // computing the links of one secret's states by its length.
        var rootNext = [Int32](repeating: 0, count: 256)
        for child in Int(firstChild[0])..<Int(firstChild[1]) { rootNext[Int(label[child])] = Int32(child) }
        var fail = [Int32](repeating: 0, count: count)
        var matchLengths = [Int32](repeating: 0, count: count)
        var state = 1
        while state < count {
            defer { state += 1 }
            let parent = Int(parents[state])
            let link = parent == 0
                ? Self.root
                : Self.next(fail[parent], label[state], rootNext: rootNext, firstChild: firstChild, label: label, fail: fail)
            fail[state] = link
            matchLengths[state] = isTerminal[state] ? depths[state] : matchLengths[Int(link)]
        }

        self.rootNext = rootNext
        self.firstChild = firstChild
        self.label = label
        self.fail = fail
        self.depths = depths
        self.matchLengths = matchLengths
        longestSecret = longest
    }

    /// The number of states, the root included.
    var stateCount: Int { label.count }

    /// The state after reading `byte` in `state`.
    @inline(__always)
    func next(_ state: State, _ byte: UInt8) -> State {
        Self.next(state, byte, rootNext: rootNext, firstChild: firstChild, label: label, fail: fail)
    }

    /// The length of the prefix `state` stands for: the bytes of the text that could still be
    /// the start of a secret.
    @inline(__always)
    func depth(_ state: State) -> Int { Int(depths[Int(state)]) }

    /// The length of the longest secret ending where `state` was reached, 0 if none. Every
    /// other secret ending there is a suffix of that one.
    @inline(__always)
    func matchLength(_ state: State) -> Int { Int(matchLengths[Int(state)]) }

    private static func next(_ state: State, _ byte: UInt8, rootNext: [Int32], firstChild: [Int32], label: [UInt8], fail: [Int32]) -> State {
        var s = Int(state)
        while s != 0 {
            var low = Int(firstChild[s])
            var high = Int(firstChild[s + 1])
            while low < high {
                let middle = (low + high) / 2
                let l = label[middle]
                if l == byte { return Int32(middle) }
                if l < byte { low = middle + 1 } else { high = middle }
            }
            s = Int(fail[s])
        }
        return rootNext[Int(byte)]
    }
}
