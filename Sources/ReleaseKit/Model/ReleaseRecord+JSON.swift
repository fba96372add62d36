import FoundationEssentials

extension TaskRecord {
    /// The task as JSON, its fields in schema order.
    public func write(to w: inout PrettyJSONWriter) {
        w.beginObject()
        w.key("name"); w.string(name)
        w.key("state"); w.string(state.rawValue)
        if let reason { w.key("reason"); w.string(reason) }
        if let exitStatus { w.key("exitStatus"); w.int(exitStatus) }
        if let signal { w.key("signal"); w.int(signal) }
        if let startedAt { w.key("startedAt"); w.string(Timestamp.format(startedAt)) }
        if let durationMs { w.key("durationMs"); w.int(durationMs) }
        if let cpuMs { w.key("cpuMs"); w.int(cpuMs) }
        if let peakMemoryBytes { w.key("peakMemoryBytes"); w.int(peakMemoryBytes) }
        if let gate {
            w.key("gate")
            w.beginObject()
            w.key("variable"); w.string(gate.variable)
            if let value = gate.value { w.key("value"); w.string(value) }
            w.endObject()
        }
        if let command {
            w.key("command")
            w.beginArray()
            for argument in command { w.element(); w.string(argument) }
            w.endArray()
        }
        if let attempts {
            w.key("attempts")
            w.beginArray()
            for a in attempts {
                w.element()
                w.beginObject()
                if let startedAt = a.startedAt { w.key("startedAt"); w.string(Timestamp.format(startedAt)) }
                if let ms = a.durationMs { w.key("durationMs"); w.int(ms) }
                w.key("outcome"); w.string(a.outcome)
                if let status = a.exitStatus { w.key("exitStatus"); w.int(status) }
                if let reason = a.reason { w.key("reason"); w.string(reason) }
                w.endObject()
            }
            w.endArray()
        }
        if let migrations {
            w.key("migrations")
            w.beginObject()
            w.key("tool"); w.string(migrations.tool)
            w.key("versionBefore"); w.string(migrations.versionBefore)
            w.key("versionAfter"); w.string(migrations.versionAfter)
            for (key, list) in [("applied", migrations.applied), ("pending", migrations.pending)] {
                w.key(key)
                w.beginArray()
                for m in list { w.element(); w.string(m) }
                w.endArray()
            }
            w.endObject()
        }
        w.endObject()
    }
}

extension ReleaseRecord {
    /// The record's members in schema order (inside an object the caller opened, so that a
    /// caller may add its own after them: the notify payload's `text`).
    public func writeMembers(to w: inout PrettyJSONWriter) {
        w.key("version"); w.int(version)
        w.key("id"); w.string(id)
        w.key("app"); w.string(app)
        w.key("release"); w.string(release)
        w.key("phase"); w.string(phase.rawValue)
        w.key("state"); w.string(state.rawValue)
        if let reason { w.key("reason"); w.string(reason) }
        if let reasonCode { w.key("reasonCode"); w.string(reasonCode) }
        w.key("warnings")
        w.beginArray()
        for warning in warnings { w.element(); w.string(warning) }
        w.endArray()
        if let directory { w.key("directory"); w.string(directory) }
        if let image { w.key("image"); w.string(image) }
        if let imageID { w.key("imageID"); w.string(imageID) }
        if let node { w.key("node"); w.string(node) }
        if let cluster {
            w.key("cluster")
            w.beginObject()
            w.key("deployKey"); w.string(cluster.deployKey)
            w.key("ranOn"); w.string(cluster.ranOn)
            w.endObject()
        }
        if let submittedAt { w.key("submittedAt"); w.string(Timestamp.format(submittedAt)) }
        if let startedAt { w.key("startedAt"); w.string(Timestamp.format(startedAt)) }
        if let finishedAt { w.key("finishedAt"); w.string(Timestamp.format(finishedAt)) }
        if let durationMs { w.key("durationMs"); w.int(durationMs) }
        if let retryOf { w.key("retryOf"); w.string(retryOf) }
        w.key("tasks")
        w.beginArray()
        for task in tasks {
            w.element()
            task.write(to: &w)
        }
        w.endArray()
    }

    /// The record as a JSON object.
    public func write(to w: inout PrettyJSONWriter) {
        w.beginObject()
        writeMembers(to: &w)
        w.endObject()
    }

    /// The record file's bytes: pretty JSON, fields in schema order, a trailing newline. The
    /// same text, byte for byte, every time (no dictionary orders it): the daemon writes it,
    /// `--json` prints it.
    public func encoded() -> [UInt8] {
        var w = PrettyJSONWriter(capacity: 512 + 256 * tasks.count)
        write(to: &w)
        var bytes = w.bytes
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }
}

/// What the CLI prints for `--json`: records exactly as their files hold them.
public enum JSONOutput {
    /// One record.
    public static func record(_ record: ReleaseRecord) -> String {
        var w = PrettyJSONWriter()
        record.write(to: &w)
        return w.text
    }

    /// An array of records, in the order given.
    public static func records(_ records: [ReleaseRecord]) -> String {
        var w = PrettyJSONWriter(capacity: 1024 * max(records.count, 1))
        w.beginArray()
        for record in records {
            w.element()
            record.write(to: &w)
        }
        w.endArray()
        return w.text
    }
}
