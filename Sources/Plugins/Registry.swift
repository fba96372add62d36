import ReleaseKit

/// The built-in release tasks, in the order a release runs them (each in its phase: a
/// predeploy runs the predeploy ones, a postdeploy the postdeploy ones). Adding a task is one
/// new file and one line here.
public enum Registry {
    public static let tasks: [any ReleaseTask.Type] = [
        // predeploy: before the new version takes traffic
        AppJSONPredeployTask.self,
        ProcfileTask.self,
        MigrateTask.self,
        SeedTask.self,
        CacheClearTask.self,
        NotifyTask.self,
        // postdeploy: after traffic moved
        PostMigrateTask.self,
        AppJSONPostdeployTask.self,
        AppJSONFirstDeployTask.self,
        WarmUpTask.self,
        NotifyDeployedTask.self,
    ]
}
