import FoundationEssentials

/// What `releasectl cluster status` shows: the nodes with their last heartbeat, the releases
/// running anywhere with what is left of their leases, and the deploy keys waiting. The daemon
/// writes it (`logs/cluster-status.json`) every third of its lease; the CLI reads it, so the
/// CLI needs neither the database nor its password.
public enum ClusterStatus {
    public struct Node: Sendable, Decodable, Equatable {
        public var node: String
        public var heartbeatAgeMs: Int64
        public var live: Bool
        public init(node: String, heartbeatAgeMs: Int64, live: Bool) {
            self.node = node
            self.heartbeatAgeMs = heartbeatAgeMs
            self.live = live
        }
    }

    public struct Running: Sendable, Decodable, Equatable {
        public var deployKey: String, app: String, release: String, node: String
        public var leaseLeftMs: Int64
        public init(deployKey: String, app: String, release: String, node: String, leaseLeftMs: Int64) {
            (self.deployKey, self.app, self.release, self.node, self.leaseLeftMs) = (deployKey, app, release, node, leaseLeftMs)
        }
    }

    public struct Waiting: Sendable, Decodable, Equatable {
        public var deployKey: String, app: String, release: String, serialKey: String
        /// The nodes that hold a request of it.
        public var nodes: [String]
        public init(deployKey: String, app: String, release: String, serialKey: String, nodes: [String]) {
            (self.deployKey, self.app, self.release, self.serialKey, self.nodes) = (deployKey, app, release, serialKey, nodes)
        }
    }

    public struct Snapshot: Sendable, Decodable, Equatable {
        /// The node that wrote it.
        public var node: String
        /// Why the database could not be read (then the lists are empty), or nil.
        public var database: String?
        public var nodes: [Node]
        public var running: [Running]
        public var waiting: [Waiting]
        /// When it was written (set by the writer).
        public var writtenAt: String?

        public init(node: String, database: String?, nodes: [Node], running: [Running], waiting: [Waiting], writtenAt: String? = nil) {
            self.node = node
            self.database = database
            self.nodes = nodes
            self.running = running
            self.waiting = waiting
            self.writtenAt = writtenAt
        }

        /// The file's bytes, members in a fixed order.
        public func encoded() -> [UInt8] {
            var w = PrettyJSONWriter()
            w.beginObject()
            w.key("node"); w.string(node)
            w.key("database"); w.string(database)
            w.key("writtenAt"); w.string(writtenAt)
            w.key("nodes")
            w.beginArray()
            for n in nodes {
                w.element(); w.beginObject()
                w.key("node"); w.string(n.node)
                w.key("heartbeatAgeMs"); w.int(n.heartbeatAgeMs)
                w.key("live"); w.bool(n.live)
                w.endObject()
            }
            w.endArray()
            w.key("running")
            w.beginArray()
            for r in running {
                w.element(); w.beginObject()
                w.key("deployKey"); w.string(r.deployKey)
                w.key("app"); w.string(r.app)
                w.key("release"); w.string(r.release)
                w.key("node"); w.string(r.node)
                w.key("leaseLeftMs"); w.int(r.leaseLeftMs)
                w.endObject()
            }
            w.endArray()
            w.key("waiting")
            w.beginArray()
            for q in waiting {
                w.element(); w.beginObject()
                w.key("deployKey"); w.string(q.deployKey)
                w.key("app"); w.string(q.app)
                w.key("release"); w.string(q.release)
                w.key("serialKey"); w.string(q.serialKey)
                w.key("nodes")
                w.beginArray()
                for n in q.nodes { w.element(); w.string(n) }
                w.endArray()
                w.endObject()
            }
            w.endArray()
            w.endObject()
            return Array(w.text.utf8) + [UInt8(ascii: "\n")]
        }

        public static func decode(_ bytes: [UInt8]) throws -> Snapshot {
            try JSONDecoder().decode(Snapshot.self, from: Data(bytes))
        }

        /// For people.
        public var text: String {
            var out = "node \(node)" + (writtenAt.map { " (as of \($0))" } ?? "") + "\n"
            if let database { out += "the cluster database cannot be reached: \(database)\n"; return out }
            out += "\nnodes:\n"
            for n in nodes { out += "  \(n.node)  \(n.live ? "live" : "gone")  last heartbeat \(Summary.duration(max(0, n.heartbeatAgeMs))) ago\n" }
            out += "\nrunning:\n"
            if running.isEmpty { out += "  none\n" }
            for r in running { out += "  \(r.deployKey)  \(r.app) \(r.release)  on \(r.node)  lease \(Summary.duration(max(0, r.leaseLeftMs))) left\n" }
            out += "\nwaiting:\n"
            if waiting.isEmpty { out += "  none\n" }
            for q in waiting { out += "  \(q.deployKey)  \(q.app) \(q.release)  serial key \(q.serialKey)  on \(q.nodes.joined(separator: ", "))\n" }
            return out
        }
    }
}
