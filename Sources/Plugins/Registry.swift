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
}
