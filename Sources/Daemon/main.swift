import ArgumentParser
import Glibc
import ReleaseKit

// The process guard is the same executable started with a private flag: it must not go
// through argument parsing or start anything else.
if CommandLine.arguments.count == 2, CommandLine.arguments[1] == ProcessGuard.flag {
    ProcessGuard.runGuard()
}
// So is the helper that starts a task as an app's user.
if CommandLine.arguments.count > 1, CommandLine.arguments[1] == RunAs.flag {
    RunAs.main(CommandLine.arguments)
}
do {
    var command = try Released.parseAsRoot()
    if let released = command as? Released {
        try await released.run()
    } else {
        try command.run()
    }
} catch {
    // Usage errors exit 2, not swift-argument-parser's 64.
    let code = Released.exitCode(for: error)
    if code == .validationFailure {
        FileOutput.write(STDERR_FILENO, Released.fullMessage(for: error) + "\n")
        exit(2)
    }
    Released.exit(withError: error)
}
