import ArgumentParser
import ReleaseKit

/// `releasectl cluster status`: what the local daemon last saw of its cluster.
struct Cluster: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the cluster the daemon coordinates with ([cluster] in released.toml).",
        subcommands: [ClusterStatusCommand.self])
}

/// The nodes and their heartbeats, what runs where with the lease left, and the deploy keys
/// waiting, as the daemon wrote them to its spool (every third of its lease): the CLI needs
/// neither the database nor its password.
struct ClusterStatusCommand: RunnableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the cluster's nodes, running releases and waiting deploy keys.")

    @OptionGroup var spoolOptions: SpoolOptions
    @Flag(name: .long, help: "Print the snapshot as JSON.") var json = false

    func execute() async throws {
        let spool = spoolOptions.resolved
        guard let bytes = spool.readClusterStatus() else {
            throw CLIError(1, "no cluster status in \(spool.root): the daemon runs without [cluster], or has not started")
        }
        let snapshot: ClusterStatus.Snapshot
        do { snapshot = try ClusterStatus.Snapshot.decode(bytes) } catch {
            throw CLIError(1, "the cluster status in \(spool.root) cannot be read: \(error)")
        }
        if json {
            Output.out(String(decoding: snapshot.encoded(), as: UTF8.self))
        } else {
            Output.out(snapshot.text)
        }
    }
}

extension ClusterStatusCommand {
    /// For `status` while releases wait: the daemon's last word on an unreachable database.
    static func databaseNotice(_ spool: Spool) -> String? {
        guard let bytes = spool.readClusterStatus(), let snapshot = try? ClusterStatus.Snapshot.decode(bytes),
              let problem = snapshot.database else { return nil }
        return "waiting for the cluster database: \(problem)" + (snapshot.writtenAt.map { " (as of \($0))" } ?? "")
    }
}
