import ArgumentParser
import Glibc
import ReleaseKit
import ReleaseSupport

/// The `released` executable's entry (`Sources/released/main.swift` calls it): a private mode
/// of the same program, the process guard (`--process-guard`), taken before any argument
/// parsing, as it may neither go through it nor start anything else; otherwise the daemon
/// (`Released`).
/// Usage errors exit 2, not swift-argument-parser's 64.
public enum DaemonMain {
    public static func main() async -> Never {
        if CommandLine.arguments.count == 2, CommandLine.arguments[1] == ProcessGuard.flag {
            ProcessGuard.runGuard()
        }
        do {
            var command = try Released.parseAsRoot()
            if let released = command as? Released {
                try await released.run()
            } else {
                try command.run()
            }
            exit(0)
        } catch {
            let code = Released.exitCode(for: error)
            if code == .validationFailure {
                FileOutput.write(STDERR_FILENO, Released.fullMessage(for: error) + "\n")
                exit(2)
            }
            Released.exit(withError: error)
        }
    }
}
