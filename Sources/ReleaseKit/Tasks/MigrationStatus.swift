/// Each framework's own migration status command, and what its output says: the migrations
/// applied and pending, and the schema version. Run as the app's user in the task's place and
/// environment, before and after a migration task (its record's `migrations`), and by `plan
/// --pending`. Output that cannot be read says nothing: never a guess.
public enum MigrationStatus {
    /// What a status command listed.
    public struct Report: Sendable, Equatable {
        public var applied: [String]
        public var pending: [String]
        /// The schema's version as the framework counts it (Rails, Phoenix: the newest
        /// applied migration's version; Django, Laravel: the last applied migration).
        public var version: String?

        public init(applied: [String], pending: [String], version: String?) {
            self.applied = applied
            self.pending = pending
            self.version = version
        }
    }

    /// What in a failed migration's output says a lock timed out: PostgreSQL's SQLSTATE and
    /// condition name (any language), its English message, and the clients' own errors (Rails'
    /// `ActiveRecord::LockWaitTimeout`, the pg gem's and psycopg's `LockNotAvailable`). The
    /// output is the app's own: a migration that prints one is only ever its own retried.
    public static let lockTimeoutMarkers = ["55P03", "lock_not_available", "canceling statement due to lock timeout", "LockWaitTimeout",
                                            "LockNotAvailable"]

    /// The command that lists a preset's migrations.
    public static func command(for preset: Preset) -> Command {
        switch preset {
        case .rails: .argv(["bundle", "exec", "rails", "db:migrate:status"])
        case .django(let python): .argv([python, "manage.py", "showmigrations", "--plan"])
        case .laravel: .argv(["php", "artisan", "migrate:status"])
        case .phoenix: .argv(["mix", "ecto.migrations"])
        case .prisma: .argv(["npx", "prisma", "migrate", "status"])
        }
    }

    /// Whether the preset's database client takes `PGOPTIONS` (libpq reads it; Postgrex and
    /// Prisma's engine do not).
    public static func honoursPGOptions(_ preset: Preset) -> Bool {
        switch preset {
        case .rails, .django, .laravel: true
        case .phoenix, .prisma: false
        }
    }

    /// The client a preset migrates with, for messages.
    public static func client(_ preset: Preset) -> String {
        switch preset {
        case .rails: "Rails' pg (libpq)"
        case .django: "Django's psycopg (libpq)"
        case .laravel: "Laravel's pgsql (libpq)"
        case .phoenix: "Phoenix's Postgrex"
        case .prisma: "Prisma's query engine"
        }
    }

    /// Whether a status command that exited with `status` still answered: `prisma migrate
    /// status` exits 1 when migrations are pending, and says which. Any other failure is no
    /// answer.
    public static func failureIsAnswer(outcome status: Int32?, output: String, preset: Preset) -> Bool {
        guard case .prisma = preset, status == 1 else { return false }
        return output.contains("not yet been applied")
    }

    /// The most migrations a list keeps, and the longest name: a status command is the app's
    /// code, and what it lists goes into the record.
    public static let maximumListed = 2000
    public static let maximumNameBytes = 255

    /// A name from a status command's output as the record keeps it: printable, at most
    /// `maximumNameBytes`; nil for anything else.
    static func name(_ text: String) -> String? {
        let t = text.trimmingBlanks()
        guard !t.isEmpty, t.utf8.count <= maximumNameBytes, !Syntax.hasControlCharacters(t) else { return nil }
        return t
    }

    /// Reads a status command's output; nil when it lists nothing recognisable, or more than
    /// `maximumListed`, or a name that is not one.
    public static func parse(_ output: String, preset: Preset) -> Report? {
        var applied: [String] = [], pending: [String] = []
        var version: String?
        let lines = output.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map { String($0) }
        switch preset {
        case .rails, .phoenix:
            // "   up     20261207000000  Add title to books" (Phoenix: "  up     20261207000000 add_title")
            for line in lines {
                let words = line.split(separator: " ", omittingEmptySubsequences: true)
                guard words.count >= 2, words[0] == "up" || words[0] == "down",
                      words[1].allSatisfy(\.isNumber), !words[1].isEmpty else { continue }
                let name = words.dropFirst().joined(separator: " ")
                if words[0] == "up" {
                    applied.append(name)
                    if version.map({ words[1].count > $0.count || (words[1].count == $0.count && String(words[1]) > $0) }) ?? true {
                        version = String(words[1])
                    }
                } else {
                    pending.append(name)
                }
            }
        case .django:
            // "[X]  books.0001_initial", "[ ]  books.0002_add_title"
            for line in lines {
                let t = line.trimmingBlanks()
                if t.hasPrefix("[X]") || t.hasPrefix("[x]") {
                    let name = String(t.dropFirst(3)).trimmingBlanks().split(separator: " ").first.map(String.init) ?? ""
                    guard !name.isEmpty else { continue }
                    applied.append(name)
                    version = name
                } else if t.hasPrefix("[ ]") {
                    let name = String(t.dropFirst(3)).trimmingBlanks().split(separator: " ").first.map(String.init) ?? ""
                    if !name.isEmpty { pending.append(name) }
                }
            }
        case .laravel:
            // Laravel 8: "| Yes  | 2014_10_12_000000_create_users_table | 1     |"
            // Laravel 9+: "  2014_10_12_000000_create_users_table ........ [1] Ran" / "… Pending"
            for line in lines {
                let cells = line.split(separator: "|").map { String($0).trimmingBlanks() }.filter { !$0.isEmpty }
                if cells.count >= 2, cells[0] == "Yes" || cells[0] == "No" {
                    if cells[0] == "Yes" { applied.append(cells[1]); version = cells[1] } else { pending.append(cells[1]) }
                    continue
                }
                let t = line.trimmingBlanks()
                guard let name = t.split(separator: " ").first.map(String.init), name.first?.isNumber == true else { continue }
                if t.hasSuffix("Ran") { applied.append(name); version = name } else if t.hasSuffix("Pending") { pending.append(name) }
            }
        case .prisma:
            // "Following migrations have not yet been applied:\n20261207_add_title\n\nTo apply…"
            // or "Database schema is up to date!" (applied ones are not listed).
            var inList = false
            for line in lines {
                let t = line.trimmingBlanks()
                if t.hasPrefix("Following migration") && t.contains("not yet been applied") { inList = true; continue }
                if inList {
                    if t.isEmpty || t.contains(" ") { inList = false; continue }
                    pending.append(t)
                }
            }
            if pending.isEmpty && !output.contains("Database schema is up to date") { return nil }
            return checked(Report(applied: [], pending: pending, version: nil))
        }
        guard !applied.isEmpty || !pending.isEmpty else { return nil }
        return checked(Report(applied: applied, pending: pending, version: version))
    }

    /// A report whose every name is one (see `name`) and whose lists are bounded, else nil.
    static func checked(_ report: Report) -> Report? {
        guard report.applied.count + report.pending.count <= maximumListed else { return nil }
        let all = report.applied + report.pending + (report.version.map { [$0] } ?? [])
        guard all.allSatisfy({ name($0) == $0 }) else { return nil }
        return report
    }

    /// What a migration task did, from the reports before and after it.
    public static func record(tool: String, before: Report?, after: Report?) -> MigrationRecord? {
        guard before != nil || after != nil else { return nil }
        let applied: [String]
        if let before, let after {
            let wasPending = Set(before.pending)
            applied = after.applied.filter { wasPending.contains($0) }
                + before.pending.filter { name in !after.pending.contains(name) && !after.applied.contains(name) }
        } else {
            applied = []
        }
        return MigrationRecord(tool: tool, versionBefore: before?.version, versionAfter: after?.version, applied: applied,
                               pending: after?.pending ?? before?.pending ?? [])
    }
}
