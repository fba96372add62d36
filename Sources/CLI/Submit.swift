import ArgumentParser
import FoundationEssentials
import Glibc
import ReleaseKit
import ReleasePlugins
import SystemPackage

/// `releasectl submit`: spool a release request, optionally follow it to its end.
struct Submit: RunnableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit a release request; with --wait, stream its tasks and exit with its outcome.",
        discussion: """
            Without --wait prints the new release id alone (id=$(releasectl submit ...)). With --wait \
            prints the id, then each task's start, output and result, then a summary line, and exits \
            0 succeeded, 1 failed, 2 rejected, 3 cancelled or interrupted, 4 --timeout passed.
            """)

    @OptionGroup var spoolOptions: SpoolOptions

    @Option(name: .long, help: ArgumentHelp("The app ([a-z0-9][a-z0-9-]{0,62}).", valueName: "name"))
    var app: String

    @Option(name: .long, help: ArgumentHelp("The release label shown to people, e.g. v42.", valueName: "label"))
    var release: String

    @Option(name: .long, help: ArgumentHelp("The app directory of this release (with --image: optional; its release.toml wins over the image's).", valueName: "dir"))
    var dir: String?

    @Option(name: .long, help: ArgumentHelp("Run the tasks in containers of this image (podman's name for it).", valueName: "ref"))
    var image: String?

    @Option(name: .long, help: ArgumentHelp("With a cluster: the deploy this request belongs to on every host (default: app/release); its tasks run once.", valueName: "key"))
    var deployKey: String?

    @OptionGroup var phaseOptions: PhaseOptions
    @OptionGroup var envOptions: EnvOptions
    @OptionGroup var taskOptions: TaskOptions
    @OptionGroup var waitOptions: WaitOptions

    func validate() throws {
        if let deployKey, !Syntax.isValidReleaseLabel(deployKey) { throw ValidationError("--deploy-key must be 1 to 128 printable characters") }
        guard Syntax.isValidAppName(app) else {
            throw ValidationError("--app \(Masking.preview(app)) is not a valid app name ([a-z0-9][a-z0-9-]{0,62})")
        }
        if let deployKey, let problem = ReleaseRequest.deployKeyProblem(deployKey, app: app) { throw ValidationError("--deploy-key \(problem)") }
        guard Syntax.isValidReleaseLabel(release) else {
            throw ValidationError("--release must be 1 to 128 printable characters")
        }
        if let dir, dir.isEmpty { throw ValidationError("--dir must not be empty") }
        guard dir != nil || image != nil else { throw ValidationError("give --dir, --image, or both") }
        if let image, !Syntax.isValidImageReference(image) {
            throw ValidationError("--image \(Masking.preview(image)) is not an image reference (letters, digits and ._-/:@+, at most 255)")
        }
    }

    func execute() async throws {
        let env = try envOptions.resolve()
        let tasks = try taskOptions.resolve(known: Registry.tasks.map { $0.name })
        let request = ReleaseRequest(id: ReleaseID.generate(), app: app, release: release,
                                     directory: dir.map { FilePath($0).absolute().string }, image: image, env: env, tasks: tasks,
                                     deployKey: deployKey, phase: try phaseOptions.resolve())
        try Spooling.submitAndReport(request, spool: spoolOptions.resolved, wait: waitOptions)
    }
}

/// `--wait`, `--timeout`, `--json` for commands that submit.
struct WaitOptions: ParsableArguments {
    @Flag(name: .long, help: "Follow the release to its end and exit with its outcome.")
    var wait = false

    @Option(name: .long, help: ArgumentHelp("With --wait: give up after this long (exit 4), e.g. 30m.", valueName: "duration"))
    var timeout: String?

    @Flag(name: .long, help: "Print JSON: {\"id\": ...}, or with --wait the final record (output goes to stderr).")
    var json = false

    func parsedTimeout() throws(CLIError) -> Duration? {
        guard let timeout else { return nil }
        do { return try DurationParser.parse(timeout) } catch { throw .usage("--timeout: \(error)") }
    }
}

enum Spooling {
    /// Spools the request and prints what the CLI contract says.
    static func submitAndReport(_ request: ReleaseRequest, spool: Spool, wait: WaitOptions) throws(CLIError) {
        let timeout = try wait.parsedTimeout()
        if timeout != nil && !wait.wait { throw .usage("--timeout needs --wait") }
        do {
            try spool.create()
            try spool.submit(request)
        } catch {
            throw CLIError(2, "cannot submit: \(error)")
        }
        let id = request.id.rawValue
        guard wait.wait else {
            Output.line(wait.json ? "{\"id\": \"\(id)\"}" : id)
            return
        }
        if !wait.json { Output.line(id) }
        try followAndExit(id: id, spool: spool, timeout: timeout, json: wait.json)
    }

    /// Follows a release, prints its summary (or record), and exits with its outcome.
    static func followAndExit(id: String, spool: Spool, timeout: Duration?, json: Bool, streamLog: Bool = true) throws(CLIError) -> Never {
        let follower = Follower(spool: spool, id: id, outputFD: json ? 2 : 1, streamLog: streamLog)
        guard let record = follower.follow(timeout: timeout) else {
            let state: String = switch spool.locate(id) {
            case .queued?: "queued"
            case .running?: "running"
            default: "unknown"
            }
            Output.error("gave up waiting after \(DurationParser.format(timeout!)); the release is still \(state) (releasectl wait \(id))")
            exit(4)
        }
        if json {
            Output.line(JSONOutput.record(record))
        } else {
            Output.line(RecordText.summary(record))
        }
        exit(record.state.exitCode)
    }
}
