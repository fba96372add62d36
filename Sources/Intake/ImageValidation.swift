import ReleaseContainers
import ReleaseKit

/// Reads an image release's app files from the image itself, without running anything of it:
/// the engine mounts the image's root folder read-only, and release.toml, the Procfile and the
/// preset files are read from its working directory, resolved *inside* that root
/// (`RESOLVE_IN_ROOT`: an absolute link means the image's own path, never the host's). A
/// release.toml in the request's directory, when it has one, wins over the image's; it is
/// read as the app's user, like every app file.
public enum ImageValidation {
    /// What the image says, and the release's plan from it.
    public struct Result: Sendable {
        /// The image as the engine has it; nil when the engine does not have it yet (it is
        /// pulled when the release runs, and the plan is made again from it then).
        public var image: ContainerEngine.Image?
        public var validation: AppValidation.Validation
        /// Where the tasks run in the container: release.toml's `workdir`, else the image's.
        public var workingDirectory: String?
    }

    /// Validates an image release in full (see above).
    public static func validate(_ request: ReleaseRequest, engine: ContainerEngine, policy: IntakePolicy,
                                registry: [any ReleaseTask.Type], credentials: FileCredentials?) throws(RejectReason) -> Result {
        guard let reference = request.image else { throw RejectReason(.image, "the request names no image") }
        if let directory = request.directory {
            try AppValidation.asUser(credentials) { () throws(RejectReason) in try AppValidation.checkDirectory(directory, policy: policy) }
        }
        // The request's directory, when given, as the app's user: its release.toml wins.
        let overrides = try request.directory.map { dir throws(RejectReason) in
            try AppValidation.asUser(credentials) { () throws(RejectReason) in try AppDirectory.open(dir) }
        }
        let read = try engine.withImage(reference) { image, root throws(RejectReason) in
            let files = try AppDirectory.open(imageRoot: root, workingDirectory: image.workingDirectory, image: "image \(reference)")
            let validation = try AppValidation.asUser(credentials) { () throws(RejectReason) in
                try AppValidation.validate(app: request.app, files: files, configFrom: overrides, env: request.env, tasks: request.tasks,
                                           phase: request.phase, registry: registry)
            }
            return Result(image: image, validation: validation, workingDirectory: validation.workdir ?? image.workingDirectory)
        }
        if let read { return read }
        // Planned from what the request says alone until the image is there.
        let empty = AppInspection(directory: "image \(reference)")
        let files = try overrides.map { dir throws(RejectReason) in
            try AppValidation.asUser(credentials) { () throws(RejectReason) in
                try AppInspection.inspect(dir, path: TaskEnvironment.path(for: request.env), registry: registry)
            }
        }
        let inspection = AppInspection(directory: empty.directory, config: files?.config ?? AppConfig())
        let plan = try ReleasePlan.make(app: request.app, directory: empty.directory, env: request.env, tasks: request.tasks,
                                        phase: request.phase, registry: registry, inspection: inspection)
        return Result(image: nil, validation: AppValidation.Validation(plan: plan, fingerprint: overrides?.fingerprint ?? [:],
                                                                       config: inspection.config),
                      workingDirectory: inspection.config.workdir)
    }
}
