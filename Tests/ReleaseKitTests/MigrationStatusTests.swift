import ReleaseKit
import ReleaseTOML
import Testing

/// Each framework's migration status output, as its documentation and the real tools print
/// it, read into applied, pending and a version; and lock settings with their PGOPTIONS.
@Suite("migration status and lock settings")
struct MigrationStatusTests {
    @Test("Rails db:migrate:status, across databases; Phoenix ecto.migrations")
    func railsAndPhoenix() throws {
        let rails = """

            database: bookshop_production

             Status   Migration ID    Migration Name
            --------------------------------------------------
               up     20261201000000  Create books
               up     20261207000000  Add title to books
              down    20261207000001  Remove name from books

            """
        let r = try #require(MigrationStatus.parse(rails, preset: .rails))
        #expect(r.applied == ["20261201000000 Create books", "20261207000000 Add title to books"])
        #expect(r.pending == ["20261207000001 Remove name from books"])
        #expect(r.version == "20261207000000")
        let phoenix = """

            Repo: Bookshop.Repo

              Status    Migration ID    Migration Name
            --------------------------------------------------
              up        20200101120000  create_books
              down      20200202120000  add_title

            """
        let p = try #require(MigrationStatus.parse(phoenix, preset: .phoenix))
        #expect(p.applied == ["20200101120000 create_books"] && p.pending == ["20200202120000 add_title"] && p.version == "20200101120000")
        #expect(MigrationStatus.parse("rails aborted!\nActiveRecord::NoDatabaseError\n", preset: .rails) == nil, "nothing readable: nil, never a guess")
        // The app's code prints it: names are bounded and printable, or nothing is believed.
        #expect(MigrationStatus.parse("   up 1 " + String(repeating: "x", count: 300) + "\n", preset: .rails) == nil)
        #expect(MigrationStatus.parse("   up 1 a\u{1}b\n", preset: .rails) == nil)
        #expect(MigrationStatus.parse(String(repeating: "  down 1 a\n", count: 2001), preset: .rails) == nil)
        #expect(MigrationStatus.failureIsAnswer(outcome: 1, output: "Following migration have not yet been applied:\nx\n", preset: .prisma))
        #expect(!MigrationStatus.failureIsAnswer(outcome: 1, output: "   up 1 a\n", preset: .rails), "a failed status is no answer")
    }

    @Test("Django showmigrations --plan; Laravel 8 and 9+ migrate:status; Prisma migrate status")
    func djangoLaravelPrisma() throws {
        let django = """
            [X]  books.0001_initial
            [X]  books.0002_add_title
            [ ]  books.0003_remove_name
            """
        let d = try #require(MigrationStatus.parse(django, preset: .django(python: "python3")))
        #expect(d.applied == ["books.0001_initial", "books.0002_add_title"] && d.pending == ["books.0003_remove_name"])
        #expect(d.version == "books.0002_add_title")
        let laravel8 = """
            +------+------------------------------------------------+-------+
            | Ran? | Migration                                      | Batch |
            +------+------------------------------------------------+-------+
            | Yes  | 2014_10_12_000000_create_users_table           | 1     |
            | No   | 2026_12_07_000000_add_title_to_books_table     |       |
            +------+------------------------------------------------+-------+
            """
        let l = try #require(MigrationStatus.parse(laravel8, preset: .laravel))
        #expect(l.applied == ["2014_10_12_000000_create_users_table"] && l.pending == ["2026_12_07_000000_add_title_to_books_table"])
        let laravel9 = """

              Migration name .............................................. Batch / Status
              2014_10_12_000000_create_users_table ............................... [1] Ran
              2026_12_07_000000_add_title_to_books_table ......................... Pending

            """
        let l9 = try #require(MigrationStatus.parse(laravel9, preset: .laravel))
        #expect(l9.applied == ["2014_10_12_000000_create_users_table"] && l9.pending == ["2026_12_07_000000_add_title_to_books_table"])
        let prisma = """
            Prisma schema loaded from prisma/schema.prisma
            Datasource "db": PostgreSQL database "bookshop", schema "public" at "localhost:5432"

            2 migrations found in prisma/migrations
            Following migration have not yet been applied:
            20261207000000_add_title

            To apply migrations in development run prisma migrate dev.
            """
        #expect(MigrationStatus.parse(prisma, preset: .prisma)?.pending == ["20261207000000_add_title"])
        #expect(MigrationStatus.parse("2 migrations found in prisma/migrations\n\nDatabase schema is up to date!\n", preset: .prisma)?.pending == [])
    }

    @Test("what a migration applied: pending before, applied after")
    func applied() {
        let before = MigrationStatus.Report(applied: ["1 a"], pending: ["2 b", "3 c"], version: "1")
        let after = MigrationStatus.Report(applied: ["1 a", "2 b"], pending: ["3 c"], version: "2")
        let record = MigrationStatus.record(tool: "bundle exec rails db:migrate:status", before: before, after: after)
        #expect(record == MigrationRecord(tool: "bundle exec rails db:migrate:status", versionBefore: "1", versionAfter: "2",
                                          applied: ["2 b"], pending: ["3 c"]))
        // Prisma lists only what is pending: what left the list was applied.
        let prisma = MigrationStatus.record(tool: "npx prisma migrate status",
                                            before: .init(applied: [], pending: ["x", "y"], version: nil),
                                            after: .init(applied: [], pending: ["y"], version: nil))
        #expect(prisma?.applied == ["x"])
    }

    @Test("lock settings: bounds and types named; PGOPTIONS after the app's own, never over a setting it makes")
    func lockSettings() throws {
        func read(_ key: String, _ value: TOML.Value) -> String? {
            var s = LockSettings()
            do throws(TestProblem) { _ = try s.read(key, value, fail: { TestProblem(text: $0) }) } catch { return error.text }
            return nil
        }
        #expect(read("lock-timeout", .string("1s")) == nil)
        #expect(read("lock-timeout", .string("-1s")) == "lock-timeout: \"-1s\" is not a duration (examples: 90, 30s, 15m, 1h30m, 500ms)")
        #expect(read("lock-timeout", .string("1h")) == "lock-timeout must be from 10ms to 10m, not 1h")
        #expect(read("lock-timeout", .string("1ms")) == "lock-timeout must be from 10ms to 10m, not 1ms")
        #expect(read("lock-timeout", .integer(2)) == "lock-timeout must be a duration such as \"1s\", not an integer")
        #expect(read("lock-timeout", .string("1s -c search_path=evil")) != nil, "only a duration: nothing else reaches PGOPTIONS")
        #expect(read("statement-timeout", .string("2d")) != nil)
        #expect(read("lock-retries", .integer(-1)) == "lock-retries must be a whole number from 0 to 100, not -1")
        #expect(read("lock-retries", .integer(1000)) == "lock-retries must be a whole number from 0 to 100, not 1000")
        #expect(read("lock-retries", .string("5")) == "lock-retries must be a whole number from 0 to 100, not a string")

        let lock = LockSettings(lockTimeout: .seconds(1), statementTimeout: .seconds(300), lockRetries: 5)
        #expect(lock.pgOptions(appOptions: nil)?.value == "-c lock_timeout=1000ms -c statement_timeout=300000ms")
        let own = lock.pgOptions(appOptions: "-c search_path=shop -c lock_timeout=5s")
        #expect(own?.value == "-c search_path=shop -c lock_timeout=5s -c statement_timeout=300000ms")
        #expect(own?.leftToApp == ["lock_timeout"])
        #expect(LockSettings(lockRetries: 3).pgOptions(appOptions: nil) == nil, "retries alone set no option")
        // Settings by name, as libpq splits PGOPTIONS: deadlock_timeout is not lock_timeout.
        #expect(lock.pgOptions(appOptions: "-c deadlock_timeout=1s")?.value == "-c deadlock_timeout=1s -c lock_timeout=1000ms -c statement_timeout=300000ms")
        #expect(lock.pgOptions(appOptions: "-c application_name=lock_timeout")?.leftToApp == [])
        #expect(lock.pgOptions(appOptions: "--lock-timeout=5s -cstatement_timeout=1")?.leftToApp == ["lock_timeout", "statement_timeout"])
        #expect(lock.pgOptions(appOptions: "-c search_path=a\\ b -c Lock_Timeout=2s")?.leftToApp == ["lock_timeout"])
        #expect(lock.pgOptions(appOptions: "-c search_path=x\\")?.value == "-c search_path=x\\", "an unfinished escape: left alone")
        #expect(LockSettings(lockRetries: 3).over(LockSettings(lockTimeout: .seconds(2), lockRetries: 9))
                == LockSettings(lockTimeout: .seconds(2), lockRetries: 3))
    }
}

struct TestProblem: Error { var text: String }
