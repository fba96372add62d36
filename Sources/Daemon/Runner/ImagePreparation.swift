import Glibc
import ReleaseContainers
import ReleaseKit
import ReleaseSupport
import ReleaseWatcher
import Subprocess
import SystemPackage

/// Makes an image release's image ready before its first task: pulls it as the app's `pull`
/// policy says (`always`; `missing`, when the engine does not have it) with the engine's
/// output streamed into the release log, looks it up, and — when intake could not read it
/// (it was not there) or it is another build now — plans the release again from the image.
/// An image that cannot be pulled or read fails the release with the engine's reason.
struct ImagePreparation: Sendable {
    let intake: Intake

    func prepare(_ admission: Admission, log: ReleaseLog) async -> Result<Admission, TaskFailure> {
        guard let reference = admission.request.image else { return .success(admission) }
        let engine = intake.engine
        let pull = intake.config.settings(for: admission.request.app).pull
        var lookup = await BlockingCall.run { engine.inspect(reference) }
        if case .failed(let message) = lookup { return .failure(TaskFailure(.failed, reason: "cannot look the image \(reference) up: \(message)")) }
        let present: Bool = if case .present = lookup { true } else { false }
        if pull == .always || (!present && pull == .missing) {
            log.note("pulling \(reference)")
            if let problem = await self.pull(reference, engine: engine, log: log) {
                return .failure(TaskFailure(.failed, reason: "cannot pull the image \(reference): \(problem)"))
            }
            lookup = await BlockingCall.run { engine.inspect(reference) }
        }
        guard case .present(let image) = lookup else {
            let why = pull == .never ? "the engine does not have it and pull = never" : "the engine does not have it"
            return .failure(TaskFailure(.failed, reason: "no image \(reference): \(why)"))
        }
        if let known = admission.image, known == image { return .success(admission) }
        // Not read at intake, or another build since: read and planned again from the image.
        let request = admission.request, identity = admission.identity, file = admission.file, intake = intake
        let again = await BlockingCall.run { () -> Result<Admission, RejectReason> in
            Result { () throws(RejectReason) in try intake.admitImage(request, identity: identity, file: file) }
        }
        switch again {
        case .success(let fresh):
            return fresh.image == nil ? .failure(TaskFailure(.failed, reason: "no image \(reference) after the pull")) : .success(fresh)
        case .failure(let reason):
            return .failure(TaskFailure(.failed, reason: reason.message))
        }
    }

    /// `pull` with its output in the release log; the engine's message when it fails.
    private func pull(_ reference: String, engine: ContainerEngine, log: ReleaseLog) async -> String? {
        guard let program = ExecutableLookup.find(engine.executable, path: ContainerExecutor.path(of: engine.environment))
                ?? (engine.executable.hasPrefix("/") ? engine.executable : nil) else {
            return "the container engine \(engine.executable) is not installed"
        }
        do {
            let result = try await Subprocess.run(
                .path(FilePath(program)), arguments: ["pull", "--", reference],
                environment: .custom(engine.environment.map { Array("\($0)\0".utf8) }),
                input: .none, output: .sequence, error: .combinedWithOutput
            ) { execution in
                var tail = OutputTail()
                for try await buffer in execution.standardOutput {
                    buffer.withUnsafeBytes { bytes in
                        log.output(bytes, task: "pull")
                        tail.add(bytes)
                    }
                }
                log.flush(task: "pull")
                return tail.lines
            }
            guard case .exited(0) = result.terminationStatus else {
                return EngineCommand.Result(status: 1, output: result.closureResult.joined(separator: "\n"), errorOutput: "").message
            }
            return nil
        } catch {
            return "\(error)"
        }
    }
}
