import CSystemdBus
import Glibc
import ReleaseKit
import ReleaseSupport

/// systemd as the manager of tasks' units: a transient slice per task (which keeps the task's
/// figures after its processes are gone) and, for a host task, a transient scope in it with
/// the task's limits.
enum ServiceManager {
    /// Whether this daemon runs as a systemd service (systemd is the init system and started
    /// it): then host tasks get scopes, and host limits can be enforced.
    static let isManaging: Bool = getenv("INVOCATION_ID") != nil && isBooted

    /// Whether systemd is the init system here.
    static let isBooted: Bool = access("/run/systemd/system", F_OK) == 0

    /// Whether host tasks get scopes of their own: under systemd, as root (which reaches the
    /// manager on its private socket; another user would need polkit's leave to make units).
    static let makesScopes: Bool = isManaging && geteuid() == 0

    /// Why a host task's limits cannot be enforced here, or nil when they can.
    static var scopesMissing: String? {
        if makesScopes { return nil }
        if !isManaging { return "released is not running under systemd: run released as a systemd service" }
        return "released runs as a user that cannot make systemd units: run it as root (the per-app-users drop-in)"
    }

    /// How long a unit's job may take.
    static let jobTimeoutMs: Int32 = 10_000

    struct UnitError: Error, CustomStringConvertible {
        var description: String
    }

    /// The names of a task's units: `releasectl-<id>_<task>.slice` (under releasectl.slice)
    /// and `.scope`. Task names are letters and dashes; a dash in a slice's name is a level.
    static func unitName(release: String, task: String, suffix: String) -> String {
        "releasectl-\(release)_\(String(task.map { $0 == "-" ? "_" : $0 })).\(suffix)"
    }

    /// The cgroup of a slice made by `unitName` (relative to a hierarchy's root).
    static func slicePath(_ slice: String) -> String { "/releasectl.slice/\(slice)" }
}

/// One connection to systemd, for one task's units. Used by one thread at a time (each call is blocking: run it
/// through `BlockingCall`).
final class ManagerConnection: @unchecked Sendable {
    // @unchecked: the handle is used by one blocking call at a time, never concurrently.
    private let handle: OpaquePointer

    init() throws(ServiceManager.UnitError) {
        var error = [CChar](repeating: 0, count: 512)
        guard let handle = rc_manager_open(&error, error.count) else { throw ServiceManager.UnitError(description: ManagerConnection.message(error)) }
        self.handle = handle
    }

    deinit { rc_manager_close(handle) }

    private static func message(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Starts a transient unit and waits for it. `pid`: the process that moves into it (a scope).
    func start(_ name: String, description: String, slice: String? = nil, pid: pid_t = 0, limits: ResourceLimitsC = .none)
        throws(ServiceManager.UnitError) {
        var error = [CChar](repeating: 0, count: 512)
        let rc = description.withCString { desc in
            withOptionalCString(slice) { slicePtr in
                var settings = rc_unit_settings(description: desc, slice: slicePtr, pid: pid, memory_max: limits.memoryMax,
                                                cpu_quota_usec: limits.cpuQuotaUsec, tasks_max: limits.tasksMax)
                return rc_manager_start_unit(handle, name, &settings, ServiceManager.jobTimeoutMs, &error, error.count)
            }
        }
        guard rc == 0 else { throw ServiceManager.UnitError(description: Self.message(error)) }
    }

    /// Stops a unit: everything still running in it is ended.
    func stop(_ name: String) throws(ServiceManager.UnitError) {
        var error = [CChar](repeating: 0, count: 512)
        guard rc_manager_stop_unit(handle, name, ServiceManager.jobTimeoutMs, &error, error.count) == 0 else {
            throw ServiceManager.UnitError(description: Self.message(error))
        }
    }
}

/// Limits as systemd takes them (0: not set).
struct ResourceLimitsC: Sendable {
    var memoryMax: UInt64 = 0
    var cpuQuotaUsec: UInt64 = 0
    var tasksMax: UInt64 = 0

    static let none = ResourceLimitsC()
}

private func withOptionalCString<T>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> T) -> T {
    guard let s else { return body(nil) }
    return s.withCString { body($0) }
}

/// A task's units: its slice, whose cgroup (and the task's figures in it) outlives the task's
/// processes until the slice is stopped, and for a host task a scope in it that the task's
/// first process moves into, with the task's limits.
final class TaskUnits: Sendable {
    let connection: ManagerConnection
    let slice: String
    let scope: String?

    /// The slice's cgroup, below each hierarchy's root.
    var slicePath: String { ServiceManager.slicePath(slice) }

    /// `pid`: a host task's first process (nil for a container, whose engine makes its own
    /// scope in the slice). Blocking.
    init(release: String, task: String, pid: pid_t?, limits: ResourceLimits) throws(ServiceManager.UnitError) {
        connection = try ManagerConnection()
        slice = ServiceManager.unitName(release: release, task: task, suffix: "slice")
        // An active slice stays until it is stopped, empty or not (unlike a scope): its cgroup
        // and the figures in it outlive the task's processes.
        try connection.start(slice, description: "releasectl: release \(release), \(task)")
        if let pid {
            let scope = ServiceManager.unitName(release: release, task: task, suffix: "scope")
            try connection.start(scope, description: "releasectl: release \(release), \(task)", slice: slice, pid: pid,
                                 limits: ResourceLimitsC(limits))
            self.scope = scope
        } else {
            scope = nil
        }
    }

    /// Stops the slice, and so everything still running in it. Blocking.
    func stop() throws(ServiceManager.UnitError) { try connection.stop(slice) }
}
