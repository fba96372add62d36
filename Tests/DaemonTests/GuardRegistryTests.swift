import Testing
@testable import ReleaseDaemon

/// The process guard's registry: what belongs to which release, and when a release's fence
/// deadline has passed.
@Suite("guard registry")
struct GuardRegistryTests {
    @Test("groups, containers and users are kept by release; a deadline passes once, and a later one or the release's end lifts it")
    func deadlines() {
        var r = GuardRegistry()
        for line in ["R01A", "R01B", "+100 01A", "+200 01B", "Creleasectl-01A-migrate 01A", "U1001 01A", "U1002 01B", "F01A 5000", "F01B 9000", "Epodman"] {
            r.apply(line, now: 42)
        }
        #expect(r.groups(of: "01A") == [100] && r.groups(of: "01B") == [200])
        #expect(r.containers(of: "01A") == ["releasectl-01A-migrate"] && r.containers(of: "01B").isEmpty)
        #expect(r.nextDeadline == 5000)
        #expect(r.due(now: 4999).isEmpty)
        #expect(r.due(now: 5000) == ["01A"])
        #expect(r.due(now: 6000).isEmpty, "fenced once")
        #expect(r.fenced == ["01A"] && r.nextDeadline == 9000)
        #expect(Set(r.usersToSweep(for: "01A").keys) == [1001], "only the fenced release's own user")
        r.apply("r01A", now: 43)
        #expect(r.fenced.isEmpty && r.releases == ["01B"])
        // A renewal moves the deadline on before it passes.
        r.apply("F01B 12000", now: 44)
        #expect(r.due(now: 10000).isEmpty)
        #expect(r.engine == "podman")
    }

    @Test("a user shared with another live release is not swept with the fenced one; malformed lines are ignored")
    func sharedUser() {
        var r = GuardRegistry()
        for line in ["U1001 01A", "U1001 01B", "F01A 10", "+1 01A", "+x 01A", "U0 01A", "F01A", "Fnope x", "", "?"] { r.apply(line, now: 7) }
        _ = r.due(now: 11)
        #expect(r.usersToSweep(for: "01A").isEmpty, "01B still runs as uid 1001")
        #expect(r.allGroups.isEmpty, "pid 1 and a non-number are never a group")
        r.apply("u1001 01B", now: 8)
        #expect(r.usersToSweep(for: "01A")[1001]?.since == 7)
    }
}
