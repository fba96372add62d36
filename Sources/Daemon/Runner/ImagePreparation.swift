import Glibc
import ReleaseContainers
import ReleaseKit
import ReleaseSupport
import Synchronization
import SystemPackage

/// Makes an image release's image ready before its first task. One intake read (and pinned by
/// its id) is ready, unless the app's `pull` policy is `always`. Otherwise it is pulled as the
/// policy says (`always`; `missing`, when the engine does not have it) with the engine's output
/// streamed into the release log, looked up, and — when intake could not read it (it was not
/// there) or it is another build now — the release is planned again from the image.
/// An image that cannot be pulled or read fails the release with the engine's reason.
struct ImagePreparation: Sendable {
    let intake: Intake

    func prepare(_ admission: Admission, log: ReleaseLog) async -> Result<Admission, TaskFailure> {
        guard let reference = admission.request.image else { return .success(admission) }
        let engine = intake.engine
        let pull = intake.config.settings(for: admission.request.app).pull
        // Read at intake and not to be pulled again: the image is looked at once, and the
        // release runs that very build (by its id: see `Released`'s executor).
        if admission.image != nil, pull != .always { return .success(admission) }
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
            Result { () throws(RejectReason) in try intake.admit(request, identity: identity, file: file) }
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
        let process: SpawnedProcess
        do throws(Errno) {
            process = SpawnedProcess(try Spawn.start(FilePath(program), argv: [engine.executable, "pull", "--", reference],
                                                     environment: engine.environment, output: .pipe, errors: .toOutput, group: .session))
        } catch {
            return "cannot start the container engine: \(error)"
        }
        let tail = Mutex(OutputTail())
        do throws(Errno) {
            let watched = try ProcessMonitor.shared.watch(pidfd: process.leader.pidfd, output: process.output) { bytes in
                log.output(bytes, task: "pull")
                tail.withLock { $0.add(bytes) }
            }
            _ = await ProcessMonitor.shared.wait(for: watched, until: nil, control: nil)
        } catch {
            process.leader.send(SIGKILL)
            _ = await BlockingCall.run { process.reap() }
            return "cannot watch the engine's output: \(error)"
        }
        log.flush(task: "pull")
        guard case .success(.exited(0)) = await BlockingCall.run({ process.reap() }) else {
            return EngineCommand.Result(status: 1, output: tail.withLock { $0.lines }.joined(separator: "\n"), errorOutput: "").message
        }
        return nil
    }
}
