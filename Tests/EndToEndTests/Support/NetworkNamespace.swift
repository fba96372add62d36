import Foundation
import Glibc

/// A host that can be cut off: a network namespace of the test's own, joined to this one by a
/// veth pair with addresses in a private /30 (this side .1, the namespace's side .2). A daemon
/// started through `exec` runs in it; `cut` takes this side's link down, `remove` deletes the
/// namespace (and with it the pair).
final class NetworkNamespace: @unchecked Sendable {
    // @unchecked: set once in init.
    let name: String
    let hostAddress: String
    let innerAddress: String
    private let hostLink: String

    static var isAvailable: Bool { geteuid() == 0 && FileManager.default.isExecutableFile(atPath: ip) }
    private static let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/ip"

    init() async throws {
        let n = UInt32.random(in: 0..<60000)
        name = "rctest\(n)"
        hostLink = "rch\(n)"
        let innerLink = "rcn\(n)"
        // 10.213.0.0/16 split into /30s: one per namespace.
        let base = Int(n % 16000) * 4
        hostAddress = "10.213.\(base / 256).\(base % 256 + 1)"
        innerAddress = "10.213.\(base / 256).\(base % 256 + 2)"
        try await Self.run(["netns", "add", name])
        do {
            try await Self.run(["link", "add", hostLink, "type", "veth", "peer", "name", innerLink])
            try await Self.run(["link", "set", innerLink, "netns", name])
            try await Self.run(["addr", "add", "\(hostAddress)/30", "dev", hostLink])
            try await Self.run(["link", "set", hostLink, "up"])
            try await Self.run(["-n", name, "addr", "add", "\(innerAddress)/30", "dev", innerLink])
            try await Self.run(["-n", name, "link", "set", innerLink, "up"])
            try await Self.run(["-n", name, "link", "set", "lo", "up"])
        } catch {
            await remove()
            throw error
        }
    }

    /// Runs a program inside the namespace (it execs it: the pid is the program's).
    var exec: [String] { [Self.ip, "netns", "exec", name] }

    /// Cuts the link: packets to and from the namespace are dropped (no reset, as when a cable
    /// is pulled).
    func cut() async throws { try await Self.run(["link", "set", hostLink, "down"]) }

    func restore() async throws { try await Self.run(["link", "set", hostLink, "up"]) }

    /// Deletes the namespace and the veth pair.
    func remove() async {
        _ = try? await runProgram(Self.ip, ["link", "del", hostLink])
        _ = try? await runProgram(Self.ip, ["netns", "del", name])
    }

    /// A test that failed before its clean-up leaves no namespace behind (deleting it deletes
    /// the pair too).
    deinit {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.ip)
        p.arguments = ["netns", "del", name]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        if (try? p.run()) != nil { p.waitUntilExit() }
    }

    private static func run(_ arguments: [String]) async throws {
        let r = try await runProgram(ip, arguments, timeout: .seconds(30))
        guard r.status == 0 else { throw TestPostgres.Failure("ip \(arguments.joined(separator: " ")): \(r)") }
    }
}
