#if !FUZZING
import FoundationEssentials
import ReleaseSupport

/// Without libFuzzer (a normal build): replays the files given as arguments, or with
/// `--random N [--seed S]` runs N inputs from a seeded generator (mutations of the seed
/// corpus), so the targets also run where libFuzzer is not available.
@main
struct RandomDriver {
    static func main() {
        var args = Array(CommandLine.arguments.dropFirst())
        if let i = args.firstIndex(of: "--random"), i + 1 < args.count, let n = Int(args[i + 1]) {
            var seed: UInt64 = 42
            if let j = args.firstIndex(of: "--seed"), j + 1 < args.count, let s = UInt64(args[j + 1]) { seed = s }
            args.removeAll { $0.hasPrefix("--") || Int($0) != nil }
            let corpus = args.compactMap { FileManager.default.contents(atPath: $0).map(Array.init) }
            var rng = SeededGenerator(seed: seed)
            for k in 0..<n {
                var input = corpus.isEmpty ? [] : corpus[Int(rng.next() % UInt64(corpus.count))]
                let edits = Int(rng.next() % 8)
                for _ in 0..<edits {
                    let op = rng.next() % 3
                    let at = input.isEmpty ? 0 : Int(rng.next() % UInt64(input.count))
                    switch op {
                    case 0 where !input.isEmpty: input[at] = UInt8(truncatingIfNeeded: rng.next())
                    case 1: input.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                    default: if !input.isEmpty { input.remove(at: at) }
                    }
                }
                FuzzTargets.run(input)
                if (k + 1) % 100_000 == 0 { print("\(k + 1) inputs") }
            }
            print("ran \(n) inputs (seed \(seed)) without a crash")
            return
        }
        for path in args {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            FuzzTargets.run(Array(data))
        }
        print("replayed \(args.count) inputs")
    }
}

#endif
