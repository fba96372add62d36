/// When in a deploy a release runs: `predeploy` after the build and before the new version
/// takes traffic (a failure cancels the deploy), `postdeploy` once the PaaS has moved traffic
/// to it (the contract step of an expand/contract migration, warm-ups, "deployed" reports).
///
/// A postdeploy release of a deploy key runs only when that key's predeploy succeeded; in a
/// cluster, only once every node that took part in the predeploy has submitted its postdeploy
/// (the traffic barrier).
public enum ReleasePhase: String, Sendable, CaseIterable, Codable, Comparable {
    case predeploy, postdeploy

    /// The phase of a request that names none.
    public static let `default` = ReleasePhase.predeploy

    /// Words for messages: "before traffic" / "after traffic moved".
    public var moment: String {
        switch self {
        case .predeploy: "before the new version takes traffic"
        case .postdeploy: "after traffic moved to the new version"
        }
    }

    public static func < (a: ReleasePhase, b: ReleasePhase) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// The phases by name, for messages: "predeploy, postdeploy".
    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
