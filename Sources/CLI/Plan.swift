import ArgumentParser
import FoundationEssentials
import Glibc
import ReleaseKit
import ReleasePlugins
import SystemPackage

/// `releasectl plan`: what a release would do, without running anything.
struct Plan: RunnableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a release would run, and why, without running anything (exit 2 if it would be rejected).")

    @Option(name: .long, help: ArgumentHelp("The app.", valueName: "name")) var app: String
    @Option(name: .long, help: ArgumentHelp("The app directory.", valueName: "dir")) var dir: String
    @OptionGroup var envOptions: EnvOptions
    @OptionGroup var taskOptions: TaskOptions
    @Option(name: .long, help: ArgumentHelp("The daemon's configuration, for app-roots and the release time limit (read if readable).", valueName: "file"))
    var config: String?
    @Flag(name: .long, help: "Print {app, directory, preset, tasks: [{name, willRun, reason, gate, command, timeout}]} as JSON.")
    var json = false

    func validate() throws {
        guard Syntax.isValidAppName(app) else { throw ValidationError("--app \(Masking.preview(app)) is not a valid app name") }
    }

    struct JSONPlan: Encodable {
        var app: String
        var directory: String
        var preset: String?
        var workingDirectory: String
        var releaseTimeout: String
        var warnings: [String]
        var tasks: [ReleasePlan.Step]
    }

    func execute() async throws {
        let env = try envOptions.resolve()
        let tasks = try taskOptions.resolve(known: Registry.tasks.map { $0.name })
        let directory = FilePath(dir).absolute().string
        let daemonConfig = (try? DaemonConfig.load(path: config)) ?? DaemonConfig()
        let policy = IntakePolicy(allowedUsers: [], allowedGroups: [], appRoots: daemonConfig.appRoots.map { RequestIntake.realPath($0) ?? $0 })
        let plan: ReleasePlan
        do throws(RejectReason) {
            try RequestIntake.checkDirectory(directory, policy: policy)
            let inspection = try AppInspection.inspect(directory: directory, path: TaskEnvironment.path(for: env), registry: Registry.tasks)
            plan = try ReleasePlan.make(app: app, directory: directory, env: env, tasks: tasks, registry: Registry.tasks, inspection: inspection)
        } catch {
            throw CLIError(2, "the release would be rejected: \(Masking(env: env).apply(error.message))")
        }
        let masking = Masking(env: env)
        if json {
            var steps = plan.steps
            for i in steps.indices { steps[i].command = steps[i].command.map { Command.argv($0.arguments.map(masking.apply)) } }
            Output.line(JSONOutput.encode(JSONPlan(app: app, directory: directory, preset: plan.preset, workingDirectory: directory,
                                                   releaseTimeout: DurationParser.format(daemonConfig.releaseTimeout),
                                                   warnings: plan.warnings, tasks: steps)))
            return
        }
        Output.line("\(app) in \(directory) (preset: \(plan.preset ?? "none"); release time limit \(DurationParser.format(daemonConfig.releaseTimeout)))")
        for step in plan.steps {
            let mark = step.willRun ? (step.problem == nil ? "run " : "FAIL") : "skip"
            Output.line("  \(mark)  \(step.name.padding(12))\(step.reason)")
            if let command = step.command {
                Output.line("        \(String().padding(12))$ \(masking.apply(command.description))" + (step.timeout.map { "   (timeout \(DurationParser.format($0)))" } ?? ""))
            }
            if let problem = step.problem {
                Output.line("        \(String().padding(12))will fail: \(problem)")
            }
        }
        for w in plan.warnings { Output.line("warning: \(w)") }
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
