import ArgumentParser
import Glibc

do {
    var command = try Releasectl.parseAsRoot()
    if let asyncCommand = command as? any RunnableCommand {
        try await asyncCommand.execute()
    } else {
        try command.run()
    }
} catch let error as CLIError {
    Output.error(error.message)
    exit(error.code)
} catch {
    // Usage errors exit 2, not swift-argument-parser's 64.
    // One prefix for every error ("releasectl: …"); the usage is one `--help` away.
    if Releasectl.exitCode(for: error) == .validationFailure {
        Output.error(Releasectl.message(for: error) + " (see releasectl \(CommandLine.arguments.dropFirst().first { !$0.hasPrefix("-") } ?? "") --help)"
            .replacing("releasectl  --help", with: "releasectl --help"))
        exit(2)
    }
    Releasectl.exit(withError: error)
}
