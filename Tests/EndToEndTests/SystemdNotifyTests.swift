import Foundation
import Glibc
import ReleaseKit
import Testing

/// What the daemon tells systemd through a real `NOTIFY_SOCKET` (a datagram socket the test
/// binds, by path and in the abstract namespace): readiness, status, reloads, stopping, the
/// watchdog and fatal start-up errors.
@Suite("systemd notify", .serialized)
struct SystemdNotifyTests {
    @Test("READY → STATUS during a release → RELOADING/READY on SIGHUP → STOPPING on SIGTERM, exactly", arguments: [false, true])
    func lifecycleSequence(abstractSocket: Bool) async throws {
        let gates = TempDir("releasectl-gates")
        let app = try AppFixture(commands: [
            "migrate": "echo migrating; until [ -e \(gates.file("migrate")) ]; do sleep 0.02; done",
            "seed": "until [ -e \(gates.file("seed")) ]; do sleep 0.02; done; echo seeded",
        ])
        defer { app.remove(); gates.remove() }
        let daemon = try await DaemonProcess(abstractSocket: abstractSocket)
        #expect(daemon.notify.address.hasPrefix(abstractSocket ? "@" : "/"))

        let id = try await daemon.submit(app: "shop", release: "v42", dir: app.path,
                                         env: ["RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true"])
        try await daemon.notify.wait(for: "STATUS of migrate") { $0.fields["STATUS"] == "shop v42: migrate (1/2)" }
        FileManager.default.createFile(atPath: gates.file("migrate"), contents: nil)
        try await daemon.notify.wait(for: "STATUS of seed") { $0.fields["STATUS"] == "shop v42: seed (2/2)" }
        FileManager.default.createFile(atPath: gates.file("seed"), contents: nil)
        #expect(try await daemon.waitForRecord(id).state == .succeeded)
        try await daemon.notify.wait(for: "STATUS idle after the release") { $0.fields["STATUS"] == "idle, 1 done" }

        let beforeReload = daemon.notify.all.count
        let sentAt = monotonicMicroseconds()
        kill(daemon.pid, SIGHUP)
        try await daemon.notify.wait(for: "READY=1 after the reload", after: beforeReload) { $0.fields["READY"] == "1" }
        let readyAgainAt = monotonicMicroseconds()
        try await daemon.stop()
        #expect(daemon.exitStatus == 0, "released exited with \(daemon.exitStatus):\n\(daemon.log)")
        // Sent before the daemon exited; the test's reader may still be catching up.
        try await daemon.notify.wait(for: "STOPPING=1", after: beforeReload) { $0.fields["STOPPING"] == "1" }

        let messages = daemon.notify.all
        let reloading = try #require(messages.first { $0.fields["RELOADING"] == "1" })
        let monotonic = try #require(reloading.fields["MONOTONIC_USEC"].flatMap(UInt64.init), "RELOADING=1 without MONOTONIC_USEC")
        #expect(monotonic >= sentAt && monotonic <= readyAgainAt, "MONOTONIC_USEC=\(monotonic) is not the time of the reload")
        // A status line still waiting to be sent when the next one comes is replaced by it
        // (SystemdNotifier coalesces), so the brief "starting" may or may not be seen.
        let texts = messages.map { $0.text.replacing(/MONOTONIC_USEC=\d+/, with: "MONOTONIC_USEC=…") }
            .filter { $0 != "STATUS=shop v42: starting" }
        #expect(texts == [
            "READY=1\nSTATUS=idle, 0 done",
            "STATUS=shop v42: migrate (1/2)",
            "STATUS=shop v42: seed (2/2)",
            "STATUS=idle, 1 done",
            "RELOADING=1\nMONOTONIC_USEC=…\nSTATUS=reloading configuration",
            "READY=1\nSTATUS=idle, 1 done",
            "STOPPING=1\nSTATUS=stopping",
        ])
        await daemon.cleanUp()
    }

    @Test("READY=1 comes only once the spool is recovered, and the watch on incoming/ works from then on")
    func readyAfterRecovery() async throws {
        let spool = TempDir("releasectl-spool")
        let app = try AppFixture(commands: ["migrate": "echo migrated"])
        defer { app.remove() }
        // A release that was running when the last daemon died.
        let crashed = try await submitOffline(spool: spool.path + "/spool", app: "shop", release: "v1", dir: app.path)
        guard rename(spool.path + "/spool/incoming/\(crashed).json", spool.path + "/spool/running/\(crashed).json") == 0 else {
            throw HarnessError("rename: \(errno)")
        }

        let daemon = try await DaemonProcess(spool: spool, waitReady: false)
        let (ready, _) = try await daemon.notify.wait(for: "READY=1") { $0.fields["READY"] == "1" }
        let readyAt = Date.now.addingTimeInterval(-(ContinuousClock.now - ready.at).seconds)
        // The recovered release is counted in the status READY=1 carries, and was recorded first.
        #expect(ready.text == "READY=1\nSTATUS=idle, 1 done")
        let recovered = try #require(try daemon.record(crashed), "no record of the interrupted release at READY=1")
        #expect(recovered.state == .interrupted)
        let finished = try #require(recovered.finishedAt)
        #expect(finished <= readyAt.addingTimeInterval(0.005), "recovery finished at \(finished), after READY=1 at \(readyAt)")
        #expect(daemon.notify.all.first?.fields["READY"] == "1", "sd_notify before READY=1: \(daemon.notify.all.map(\.text))")

        // A request that arrives after READY=1 is seen by the watch (the scan is long done).
        let id = try await daemon.submit(app: "shop", release: "v2", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(try await daemon.waitForRecord(id).state == .succeeded)
        await daemon.cleanUp()
    }

    @Test("WATCHDOG=1 at half of WATCHDOG_USEC from the event loop, and no more once the loop is blocked")
    func watchdogPings() async throws {
        let interval = 0.3  // WATCHDOG_USEC=600000 → a ping every 300 ms
        let daemon = try await DaemonProcess(arguments: ["--test-stall-on-sigusr2"], environment: ["WATCHDOG_USEC": "600000"],
                                             wrapper: Launch.ownWatchdogPID)
        func pings() -> [NotifySocket.Message] { daemon.notify.all.filter { $0.fields["WATCHDOG"] == "1" } }
        try await eventually("8 watchdog pings (got \(pings().count))", timeout: .seconds(20)) { pings().count >= 8 }
        let times = pings().map(\.at)
        let gaps = zip(times.dropFirst(), times).map { ($0 - $1).seconds }
        let mean = gaps.reduce(0, +) / Double(gaps.count)
        // The daemon sends them at least 0.9 intervals apart; the times here are when this
        // process read them, which a loaded machine delays now and then (one late read makes
        // one short gap after it). A burst (gaps near 0) still fails.
        #expect(gaps.allSatisfy { $0 >= interval * 0.6 }, "pings closer than \(interval) s apart: \(gaps)")
        #expect(mean >= interval * 0.9 && mean <= interval * 1.6, "mean gap \(mean) s, want \(interval) s: \(gaps)")
        #expect(pings().allSatisfy { $0.text == "WATCHDOG=1" })

        // Block the scheduler actor's thread; the pings must stop while the process lives on.
        kill(daemon.pid, SIGUSR2)
        try await eventually("the daemon to block its loop") { daemon.log.contains("blocking the event loop") }
        let atStall = pings().count
        // No event announces a ping that does not come: watch for 5 intervals.
        try await Task.sleep(for: .seconds(interval * 5))
        #expect(pings().count <= atStall + 1, "\(pings().count - atStall) pings after the loop was blocked")
        #expect(daemon.isRunning)
        try await daemon.kill9()
        await daemon.cleanUp()
    }

    @Test("no watchdog pings when WATCHDOG_PID names another process")
    func watchdogForAnotherProcess() async throws {
        let daemon = try await DaemonProcess(environment: ["WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"])
        // Pings would come every 100 ms; watch for 5 of those.
        try await Task.sleep(for: .milliseconds(500))
        #expect(!daemon.notify.all.contains { $0.fields["WATCHDOG"] != nil }, "\(daemon.notify.all.map(\.text))")
        await daemon.cleanUp()
    }

    @Test("ERRNO= and the reason before exiting on a world-writable spool")
    func errnoOnWorldWritableSpool() async throws {
        let dir = TempDir("releasectl-spool")
        let spool = dir.path + "/spool"
        guard mkdir(spool, 0o777) == 0, chmod(spool, 0o777) == 0 else { throw HarnessError("mkdir: \(errno)") }
        let daemon = try await DaemonProcess(spool: dir, waitReady: false)
        let (message, _) = try await daemon.notify.wait(for: "ERRNO=") { $0.fields["ERRNO"] != nil }
        #expect(message.fields["ERRNO"] == "\(EPERM)")
        #expect(message.fields["STATUS"] == "refusing to start: \(spool) is world-writable (chmod o-w)")
        try await eventually("released to exit") { !daemon.isRunning }
        #expect(daemon.exitStatus == 1)
        #expect(!daemon.notify.all.contains { $0.fields["READY"] != nil })
        await daemon.cleanUp()
    }

    @Test("ERRNO= and the reason before exiting on a spool the daemon cannot write",
          .enabled(if: getuid() == 0, "switching to another user needs root"))
    func errnoOnUnwritableSpool() async throws {
        let dir = TempDir("releasectl-spool")
        let spool = dir.path + "/spool"
        // A complete spool owned by root, 0755: readable but not writable for another user.
        guard chmod(dir.path, 0o755) == 0, mkdir(spool, 0o755) == 0 else { throw HarnessError("mkdir: \(errno)") }
        for folder in Spool.Folder.allCases { _ = mkdir(spool + "/" + folder.rawValue, 0o755) }
        // A path socket in the 0700 temp folder is out of that user's reach; an abstract one is not.
        let daemon = try await DaemonProcess(spool: dir, waitReady: false, abstractSocket: true, wrapper: Launch.asLoneUser)
        let (message, _) = try await daemon.notify.wait(for: "ERRNO=") { $0.fields["ERRNO"] != nil }
        #expect(message.fields["ERRNO"] == "\(EACCES)")
        #expect(message.fields["STATUS"] == "the spool \(spool) is not writable by this user")
        try await eventually("released to exit") { !daemon.isRunning }
        #expect(daemon.exitStatus == 1)
        #expect(!daemon.notify.all.contains { $0.fields["READY"] != nil })
        await daemon.cleanUp()
    }

    @Test("without NOTIFY_SOCKET the daemon runs releases and stops the same, telling no one")
    func withoutNotifySocket() async throws {
        let app = try AppFixture(commands: ["migrate": "echo migrated"])
        defer { app.remove() }
        let daemon = try await DaemonProcess(environment: ["WATCHDOG_USEC": "200000"], waitReady: false, wrapper: Launch.withoutNotifySocket)
        let id = try await daemon.submit(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(try await daemon.waitForRecord(id).state == .succeeded)
        try await daemon.stop()
        #expect(daemon.exitStatus == 0)
        #expect(daemon.notify.all.isEmpty, "\(daemon.notify.all.map(\.text))")
        await daemon.cleanUp()
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
