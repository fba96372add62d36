/// What an image release's containers may do, from the operator's `[apps.<name>]` table. By
/// default the least: no process in the container can gain privileges (a set-uid or
/// file-capability binary in the image runs with the caller's own), every capability is
/// dropped (root in the container is a user like any other), and the image's root folder is
/// read-only (the engine's fresh tmpfs on /tmp, /var/tmp and /run stays writable, as do the
/// app's volumes). Each can be relaxed for one app; `releasectl plan` says so.
public struct ContainerPrivileges: Sendable, Equatable {
    /// `no-new-privileges`: set-uid and file capabilities give nothing (default true).
    public var noNewPrivileges = true
    /// `capabilities`: the capabilities the container keeps, by name without `CAP_` (default
    /// none). A capability the engine does not have itself is not given either.
    public var capabilities: [String] = []
    /// `read-only-root`: the image's root folder cannot be written (default true).
    public var readOnlyRoot = true

    public init() {}

    /// Whether these are the defaults.
    public var isLeast: Bool { self == ContainerPrivileges() }

    /// The capabilities a container may keep and still run several tasks one after another:
    /// none lets a task reach its init's memory (`SYS_PTRACE`), act as another user, or escape
    /// the init's end of what it left (a process under another uid survives its kill).
    public static let sharable: Set<String> = ["NET_BIND_SERVICE"]

    /// Whether a release's tasks may share one container: with no new privileges (a set-uid
    /// program could take another uid, out of the init's reach) and only `sharable`
    /// capabilities. Otherwise each task gets a container of its own.
    public var sharesContainers: Bool { noNewPrivileges && Set(capabilities).isSubset(of: Self.sharable) }

    /// The settings for people, each relaxation naming its key: `no new privileges, no
    /// capabilities, read-only root`.
    public func describe(app: String) -> String {
        [
            noNewPrivileges ? "no new privileges" : "new privileges allowed ([apps.\(app)] no-new-privileges = false)",
            capabilities.isEmpty ? "no capabilities" : "capabilities \(capabilities.joined(separator: ", ")) ([apps.\(app)] capabilities)",
            readOnlyRoot ? "read-only root" : "writable root ([apps.\(app)] read-only-root = false)",
        ].joined(separator: ", ") + (sharesContainers ? "" : "; a container of its own for each task")
    }

    /// The capability a name means (`net_bind_service`, `CAP_NET_BIND_SERVICE` →
    /// `NET_BIND_SERVICE`), or nil when Linux has none of that name.
    public static func capability(_ name: String) -> String? {
        var upper = name.uppercased()
        if upper.hasPrefix("CAP_") { upper.removeFirst(4) }
        return known.contains(upper) ? upper : nil
    }

    /// Linux's capabilities (linux/capability.h, through 6.x).
    public static let known: Set<String> = [
        "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
        "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
        "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
        "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
        "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
        "CHECKPOINT_RESTORE",
    ]
}
