import ReleaseKit

/// The built-in release tasks, in the order a release runs them. Adding a task is one new
/// file and one line here.
public enum Registry {
    public static let tasks: [any ReleaseTask.Type] = [
        ProcfileTask.self,
        MigrateTask.self,
        SeedTask.self,
        CacheClearTask.self,
        NotifyTask.self,
    ]

    /// The task type registered under a name.
    public static func task(named name: String) -> (any ReleaseTask.Type)? {
        tasks.first { $0.name == name }
    }
}
