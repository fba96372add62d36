/// An Aho–Corasick automaton over a set of secrets: finds, in one pass over the text, the
/// longest secret ending at each byte, whatever the number of secrets.
///
/// Time: building is linear in the total size of the secrets (after one sort of them); each
/// step of `next(_:_:)` is amortised constant time (the failure links followed by a step are
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

    /// An automaton over `secrets`: each is non-empty; duplicates are allowed. The caller keeps
    /// their total size within `Int32` (`Masking.maximumSecretBytes`).
    init(secrets: [[UInt8]]) {
        // The trie, built from the secrets in lexicographic order: each secret shares with the
        // previous one a prefix (whose nodes are on `path`) and then adds new nodes, each the
        // last and largest child of its parent. No search for a child is ever needed, so
        // building is linear, and every child list comes out sorted.
        let sorted = secrets.filter { !$0.isEmpty }.sorted { $0.lexicographicallyPrecedes($1) }
        var childHead: [Int32] = [-1]
        var childTail: [Int32] = [-1]
        var sibling: [Int32] = [-1]
        var byte: [UInt8] = [0]
        var terminal: [Bool] = [false]
        var path: [Int32] = [0]
        var previous: [UInt8] = []
        var longest = 0
        for secret in sorted {
            var common = 0
            while common < previous.count, common < secret.count, previous[common] == secret[common] { common += 1 }
            path.removeLast(path.count - (common + 1))
            for b in secret[common...] {
                let parent = Int(path[path.count - 1])
                let node = Int32(byte.count)
                childHead.append(-1)
                childTail.append(-1)
                sibling.append(-1)
                byte.append(b)
                terminal.append(false)
                if childTail[parent] < 0 { childHead[parent] = node } else { sibling[Int(childTail[parent])] = node }
                childTail[parent] = node
                path.append(node)
            }
            terminal[Int(path[secret.count])] = true
            longest = max(longest, secret.count)
            previous = secret
        }
        childTail = []
        path = []

        // Breadth-first renumbering: `order[new] = old`. The children of each state get
        // consecutive numbers, so `firstChild` is all that describes the edges.
        let count = byte.count
        var order: [Int32] = [0]
        order.reserveCapacity(count)
        var parents: [Int32] = [0]
        parents.reserveCapacity(count)
        var firstChild: [Int32] = []
        firstChild.reserveCapacity(count + 1)
        var head = 0
        while head < order.count {
            firstChild.append(Int32(order.count))
            var child = childHead[Int(order[head])]
            while child >= 0 {
                order.append(child)
                parents.append(Int32(head))
                child = sibling[Int(child)]
            }
            head += 1
        }
        firstChild.append(Int32(order.count))
        childHead = []
        sibling = []

        var label = [UInt8](repeating: 0, count: count)
        var depths = [Int32](repeating: 0, count: count)
        var isTerminal = [Bool](repeating: false, count: count)
        for state in 1..<max(count, 1) {
            let old = Int(order[state])
            label[state] = byte[old]
            isTerminal[state] = terminal[old]
            depths[state] = depths[Int(parents[state])] + 1
        }
        order = []
        byte = []
        terminal = []

        // Failure links, breadth first, so that every state's link (which is shallower) is
        // known before it is needed. The standard argument bounds the links followed while
        // computing the links of one secret's states by its length.
        var rootNext = [Int32](repeating: 0, count: 256)
        for child in Int(firstChild[0])..<Int(firstChild[1]) { rootNext[Int(label[child])] = Int32(child) }
        var fail = [Int32](repeating: 0, count: count)
        var matchLengths = [Int32](repeating: 0, count: count)
        for state in 1..<max(count, 1) {
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
