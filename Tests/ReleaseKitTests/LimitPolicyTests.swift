import Foundation
import ReleaseKit
import ReleaseSupport
import Testing

/// released.toml's `[limits]` and `[apps.<name>.limits]`: defaults and ceilings, key by key,
/// and how a task's effective limits are made from them and release.toml's.
@Suite("limit policy")
struct LimitPolicyTests {
    static func config(_ text: String) throws(DaemonConfig.ConfigError) -> DaemonConfig {
        try DaemonConfig.parse(text, path: "released.toml")
    }

    @Test("defaults and ceilings; an app's table overrides [limits] key by key, wherever it comes in the file")
    func merging() throws {
        let c = try Self.config("[apps.shop.limits]\nmemory = \"1G\"\n[limits]\nmemory = \"256M\"\nmax-memory = \"4G\"\nmax-pids = 500\ncpus = 1\n")
        let shop = c.limitPolicy(for: "shop"), other = c.limitPolicy(for: "blog")
        #expect(shop.defaults == ResourceLimits(memoryBytes: 1 << 30, cpus: 1))
        #expect(shop.ceilings == ResourceLimits(memoryBytes: 4 << 30, pids: 500))
        #expect(shop.defaultSources["memory"] == "released.toml [apps.shop.limits]")
        #expect(shop.defaultSources["cpus"] == "released.toml [limits]")
        #expect(other.defaults == ResourceLimits(memoryBytes: 256 << 20, cpus: 1))
    }

    @Test("bad tables stop the daemon, naming the table and the problem", arguments: [
        ("[limits]\nmemory = \"2G\"\nmax-memory = \"1G\"\n", "[limits]: the default memory 2 GiB is over the ceiling max-memory (1 GiB, released.toml [limits])"),
        ("[limits]\nmax-memory = \"1G\"\n[apps.shop.limits]\nmemory = \"2G\"\n",
         "[apps.shop.limits]: the default memory 2 GiB is over the ceiling max-memory (1 GiB, released.toml [limits])"),
        ("[limits]\nram = \"1G\"\n", "unknown key \"ram\" in [limits] (known: memory, cpus, pids, max-memory, max-cpus, max-pids)"),
        ("[limits]\nmax-memory = \"lots\"\n", "[limits] max-memory must be a size such as \"512M\" or \"2G\" (K, M, G, T: powers of 1024), or a number of bytes"),
        ("[limits]\ncpus = 0\n", "[limits] cpus must be a number of cores above 0, such as 1.5"),
        ("[limits]\ncpus = 0.005\n", "[limits] cpus 0.005 is under the least share the kernel enforces, 0.01 (1 ms of CPU time in each 100 ms)"),
        ("[limits]\nmax-cpus = 0.0099999\n", "[limits] max-cpus 0.0099999 is under the least share the kernel enforces, 0.01 (1 ms of CPU time in each 100 ms)"),
        ("[limits]\nmax-pids = 0\n", "[limits] max-pids must be a whole number of processes, at least 1"),
        ("limits = 5\n", "[limits] must be a table (known: memory, cpus, pids, max-memory, max-cpus, max-pids)"),
        ("[apps.shop]\nlimits = 5\n", "[apps.shop.limits] must be a table (known: memory, cpus, pids, max-memory, max-cpus, max-pids)"),
    ])
    func badTables(_ text: String, _ problem: String) {
        #expect(throws: DaemonConfig.ConfigError.self) { try Self.config(text) }
        do { _ = try Self.config(text) } catch { #expect(error.problem == problem) }
    }

    @Test("a task's limits: its own, else the release's, else the operator's default, else the ceiling; over a ceiling rejects")
    func resolution() throws {
        let c = try Self.config("[limits]\nmemory = \"256M\"\nmax-memory = \"1G\"\nmax-pids = 100\n")
        let policy = c.limitPolicy(for: "shop")
        let (own, ownFrom) = try policy.resolve(task: "migrate", taskLimits: ResourceLimits(memoryBytes: 512 << 20),
                                                releaseLimits: ResourceLimits(memoryBytes: 128 << 20, cpus: 2))
        #expect(own == ResourceLimits(memoryBytes: 512 << 20, cpus: 2, pids: 100))
        #expect(ownFrom == ["memory": "release.toml [tasks.migrate]", "cpus": "release.toml [limits]", "pids": "max-pids in released.toml [limits]"])
        let (none, noneFrom) = try policy.resolve(task: "seed", taskLimits: ResourceLimits(), releaseLimits: ResourceLimits())
        #expect(none == ResourceLimits(memoryBytes: 256 << 20, pids: 100))
        #expect(noneFrom["memory"] == "default in released.toml [limits]")
        #expect(throws: RejectReason.self) {
            try policy.resolve(task: "seed", taskLimits: ResourceLimits(pids: 101), releaseLimits: ResourceLimits())
        }
    }

    @Test("sizes: K, M, G, T are powers of 1024; plain numbers are bytes; anything else is not a size", arguments: [
        ("512M", Int64(512 << 20)), ("2G", Int64(2 << 30)), ("1.5G", Int64(3 << 29)), ("1048576", Int64(1 << 20)), ("1t", Int64(1) << 40),
    ])
    func sizes(_ text: String, _ bytes: Int64) {
        #expect(ResourceLimits.memory(text) == bytes)
    }

    @Test("not sizes", arguments: ["", "G", "1GiB", "-1G", "0", "1 G B", "1e9"])
    func notSizes(_ text: String) {
        #expect(ResourceLimits.memory(text) == nil)
    }

    @Test("cpus from 0.001 to the host's cores: rejected under the kernel's minimum, else enforced never above what was asked nor above a ceiling it is under")
    func cpuQuotas() throws {
        let cores = Double(max(sysconf(Int32(_SC_NPROCESSORS_ONLN)), 1))
        var generator = SeededGenerator(seed: 20261207)
        // The reproducers' values and the edges, then random values over the whole range,
        // drawn both uniformly and on a log scale (most shares asked for are small).
        var values: [Double] = [0.001, 0.0099999, 0.01, 0.0100001, 0.1699999, 0.17, 0.29, 0.3, 1, 1.5, cores]
        for _ in 0..<5_000 {
            values.append(Double.random(in: 0.001...cores, using: &generator))
            values.append(exp(Double.random(in: log(0.001)...log(cores), using: &generator)))
        }
        for cpus in values {
            let text = "[limits]\nmax-cpus = \(cpus)\n"
            guard cpus >= ResourceLimits.minimumCPUs else {
                #expect(throws: DaemonConfig.ConfigError.self, "\(cpus)") { try Self.config(text) }
                continue
            }
            let policy = try Self.config(text).limitPolicy(for: "shop")
            #expect(policy.ceilings.cpus == cpus)
            let quota = ResourceLimits.cpuQuotaMicros(cpus: cpus)
            let enforced = Double(quota) / Double(ResourceLimits.cpuPeriodMicros)
            #expect(quota >= ResourceLimits.minimumCPUQuotaMicros, "\(cpus) → \(quota) µs: under what the kernel takes")
            #expect(enforced <= cpus + 1e-11, "\(cpus) → \(quota) µs per 100 ms: looser than asked")
            #expect(cpus - enforced < 1e-5 + 1e-11, "\(cpus) → \(quota) µs per 100 ms: more than a microsecond tighter")
            // Any share at or under this one as a ceiling is enforced at or under the ceiling's quota.
            let asked = Double.random(in: ResourceLimits.minimumCPUs...cpus, using: &generator)
            #expect(ResourceLimits.cpuQuotaMicros(cpus: asked) <= quota, "\(asked) under the ceiling \(cpus) is enforced over it")
            let (resolved, _) = try policy.resolve(task: "migrate", taskLimits: ResourceLimits(cpus: asked), releaseLimits: ResourceLimits())
            #expect(resolved.cpuQuotaMicros! <= quota)
        }
        #expect(ResourceLimits.cpuQuotaMicros(cpus: 0.29) == 29_000)
        #expect(ResourceLimits.cpuQuotaMicros(cpus: 0.0100001) == 1_000)
        #expect(ResourceLimits.cpuQuotaMicros(cpus: 0.1699999) == 16_999)
        #expect(ResourceLimits.describe(cpus: 0.0100001) == "0.0100001", "a limit is shown as asked, never rounded")
    }
}
