import ArgumentParser
import ReleaseKit
import ReleasePlugins

/// `releasectl plugins`: the registered tasks.
struct Plugins: RunnableCommand {
    static let configuration = CommandConfiguration(abstract: "List the registered release tasks, their gates and default commands.")

    @OptionGroup var spoolOptions: SpoolOptions   // accepted like every command's; the list does not depend on it
    @Flag(name: .long, help: "Print an array of {name, phase, gate, summary, defaultCommand, presets} as JSON.") var json = false

    struct Entry {
        var name: String
        var phase: ReleasePhase
        var gate: String
        var summary: String
        var onByDefault: String
        var defaultCommand: [String]?
        /// Each preset's command, in `Preset.all`'s order.
        var presets: [(name: String, command: [String])]

        func write(to w: inout PrettyJSONWriter) {
            w.beginObject()
            w.key("name"); w.string(name)
            w.key("phase"); w.string(phase.rawValue)
            w.key("gate"); w.string(gate)
            w.key("summary"); w.string(summary)
            w.key("onByDefault"); w.string(onByDefault)
            w.key("defaultCommand")
            Self.write(defaultCommand, to: &w)
            w.key("presets")
            w.beginObject()
            for preset in presets {
                w.key(preset.name)
                Self.write(preset.command, to: &w)
            }
            w.endObject()
            w.endObject()
        }

        static func write(_ argv: [String]?, to w: inout PrettyJSONWriter) {
            guard let argv else { return w.null() }
            w.beginArray()
            for argument in argv { w.element(); w.string(argument) }
            w.endArray()
        }
    }

    func execute() async throws {
        // What each task would run in an app of each preset (and with a Procfile release: line).
        let sample = AppInspection(directory: "<app>", procfileRelease: "<Procfile release: line>", preset: .rails)
        let entries = Registry.tasks.map { task in
            let presets = Preset.all.compactMap { preset in
                task.defaultCommand(in: AppInspection(directory: "<app>", preset: preset)).map { (preset.name, $0.arguments) }
            }
            return Entry(name: task.name, phase: task.phase, gate: task.gate, summary: task.summary, onByDefault: task.onWhenUnset ?? "no",
                         defaultCommand: task.defaultCommand(in: sample)?.arguments, presets: presets)
        }
        if json {
            var w = PrettyJSONWriter()
            w.beginArray()
            for entry in entries {
                w.element()
                entry.write(to: &w)
            }
            w.endArray()
            Output.line(w.text)
            return
        }
        var rows = [["TASK", "PHASE", "GATE", "WHEN UNSET", "SUMMARY"]]
        for e in entries { rows.append([e.name, e.phase.rawValue, e.gate, e.onByDefault == "no" ? "off" : "on " + e.onByDefault, e.summary]) }
        Output.out(Output.table(rows))
        Output.line("")
        Output.line("Phases: predeploy runs before the new version takes traffic (submit's default); postdeploy after the PaaS moved traffic to it (submit --phase postdeploy), only once the deploy's predeploy succeeded.")
        Output.line("A task marked first-deploy (release.toml: [tasks.<name>] first-deploy = true; app-json-first-deploy always) runs only on the app's first successful release of its phase.")
        Output.line("Gate values: true/1/yes/on or false/0/no/off (any case); anything else rejects the release.")
        for task in Registry.tasks where task.coverage != nil {
            Output.line("\(task.summary); while it runs, gated tasks without a release.toml command are skipped (\(task.coverage!)).")
        }
        Output.line("Commands come from release.toml, else the framework preset detected in the app directory:")
        for preset in Preset.all {
            let app = AppInspection(directory: "<app>", preset: preset)
            let cmds = Registry.tasks.compactMap { t in t.defaultCommand(in: app).map { "\(t.name): \($0)" } }
            Output.line("  \(preset.name): " + cmds.joined(separator: "; "))
        }
    }
}
