import Foundation
import Glibc
import ReleaseKit
import Testing

/// The outage a waiting migration causes, and its cure, with real apps on a real PostgreSQL:
/// another session holds a lock on the table a migration alters for 6 s while a reader of
/// another row queries every 50 ms. Without lock settings the ALTER waits the whole 6 s and
/// the reader queues behind it; with `lock-timeout = "1s"` and `lock-retries = 5` the ALTER
/// gives up within a second, is tried again, and the release succeeds once the lock is gone —
/// the reader never waits long. Rails (Debian's ruby-rails with ruby-pg) and Django (Debian's
/// python3-django with psycopg2), released by a real daemon.
@Suite("lock-safe migrations", .serialized,
       .enabled(if: TestPostgres.isAvailable && RailsApp.isAvailable && PostgresApps.djangoAvailable,
                "needs PostgreSQL, ruby-rails with ruby-pg, python3-django with python3-psycopg2"))
struct LockSafeMigrationTests {
    /// `hold`: takes ACCESS SHARE on books (an open transaction's SELECT), says so in READY,
    /// and keeps it until SECONDS after a session first waits for a lock on books (the
    /// migration's ALTER); `read`: reads another row every 50 ms until STOP exists, then
    /// prints the longest wait in milliseconds.
    static let contention = """
        import psycopg2, sys, time, os
        mode, dsn = sys.argv[1], sys.argv[2]
        conn = psycopg2.connect(dsn)
        if mode == "hold":
            cur = conn.cursor()
            cur.execute("SELECT count(*) FROM books")
            open(sys.argv[4], "w").close()
            watch = psycopg2.connect(dsn)
            watch.autocommit = True
            wcur = watch.cursor()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                wcur.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'books'::regclass")
                if wcur.fetchone()[0] > 0:
                    break
                time.sleep(0.01)
            time.sleep(float(sys.argv[3]))
            conn.commit()
        else:
            conn.autocommit = True
            cur = conn.cursor()
            longest = 0.0
            while not os.path.exists(sys.argv[3]):
                t = time.monotonic()
                cur.execute("SELECT id FROM books WHERE id = 2")
                cur.fetchall()
                longest = max(longest, time.monotonic() - t)
                time.sleep(0.05)
            print(int(longest * 1000))
        """

    struct Contention {
        let reader: Task<CommandResult, any Error>
        let holder: Task<CommandResult, any Error>
        let stop: String

        /// Stops the reader; the longest it waited, in milliseconds.
        func longestWait() async throws -> Int {
            FileManager.default.createFile(atPath: stop, contents: nil)
            let read = try await reader.value
            _ = try await holder.value
            guard let ms = Int(read.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw HarnessError("the reader printed \(read)")
            }
            return ms
        }
    }

    /// The lock held for 6 s (from when this returns) and the reader running.
    static func contend(_ pg: TestPostgres, database: String, work: TempDir) async throws -> Contention {
        let script = work.file("contention.py")
        try contention.write(toFile: script, atomically: true, encoding: .utf8)
        let dsn = "host=127.0.0.1 port=\(pg.port) dbname=\(database) user=\(TestPostgres.role) password=\(TestPostgres.password)"
        let ready = work.file("locked-\(UInt32.random(in: 0...UInt32.max))"), stop = ready + ".stop"
        let holder = Task { try await runProgram("/usr/bin/python3", [script, "hold", dsn, "6", ready]) }
        try await eventually("the other session to hold its lock") { FileManager.default.fileExists(atPath: ready) }
        let reader = Task { try await runProgram("/usr/bin/python3", [script, "read", dsn, stop]) }
        return Contention(reader: reader, holder: holder, stop: stop)
    }

    static func env(_ pg: TestPostgres, _ database: String) -> [String: String] {
        ["RAILS_ENV": "production", "RUN_MIGRATIONS_DURING_RELEASE": "true", "PATH": "/usr/bin:/bin",
         "DATABASE_URL": "postgres://\(TestPostgres.role):\(TestPostgres.password)@127.0.0.1:\(pg.port)/\(database)",
         "DB_NAME": database, "DB_USER": TestPostgres.role, "DB_PASSWORD": TestPostgres.password, "DB_HOST": "127.0.0.1", "DB_PORT": "\(pg.port)"]
    }

    /// One framework's run: the table made by release 1 with three rows; release 2 adds a
    /// column while the lock is held — without lock settings, then (on a fresh database) with.
    static func exercise(_ framework: PostgresApps.Framework) async throws {
        let pg = try await TestPostgres.start()
        let daemon = try await DaemonProcess()
        let work = TempDir()
        defer { work.remove() }
        var waits: [Bool: Int] = [:]
        for withLocks in [false, true] {
            let db = try await pg.createDatabase()
            let env = Self.env(pg, db)
            let v1 = try framework.copy(to: work.file("\(withLocks)/v1"), second: false, locks: nil)
            let first = try await daemon.submitWait(app: "shop", release: "v1", dir: v1, env: env)
            #expect(first.status == 0, "\(first)")
            try await pg.sql("INSERT INTO books (name) VALUES ('Dune'), ('Solaris'), ('Ubik')", database: db)
            let v2 = try framework.copy(to: work.file("\(withLocks)/v2"), second: true,
                                        locks: withLocks ? "lock-timeout = \"1s\"\nlock-retries = 5\n" : nil)
            if withLocks {
                // plan --pending boots the app and lists what release 2 would apply.
                let config = work.file("released.toml")
                try "allow-root-tasks = \(geteuid() == 0)\n".write(toFile: config, atomically: true, encoding: .utf8)
                let plan = try await daemon.ctl(["plan", "--app", "shop", "--dir", v2, "--pending", "--config", config]
                                                + env.flatMap { ["--env", "\($0)=\($1)"] })
                #expect(plan.status == 0, "\(plan)")
                #expect(plan.stdout.contains("pending: \(framework.second)"), "\(plan)")
                #expect(plan.stdout.contains("locks: lock-timeout 1s, lock-retries 5"), "\(plan)")
                #expect(plan.stdout.contains("PGOPTIONS=-c lock_timeout=1000ms"), "\(plan)")
            }
            let contention = try await Self.contend(pg, database: db, work: work)
            let r = try await daemon.submitWait(app: "shop", release: "v2", dir: v2, env: env)
            let longest = try await contention.longestWait()
            waits[withLocks] = longest
            #expect(r.status == 0, "\(framework.name) with locks \(withLocks): \(r)")
            let migrate = try #require(try daemon.record(r.lines[0])?.tasks.first { $0.name == "migrate" })
            if withLocks {
                #expect(longest < 1500, "\(framework.name): the reader waited \(longest) ms with lock-timeout 1s")
                let attempts = try #require(migrate.attempts, "\(migrate)")
                #expect(attempts.count >= 2 && attempts.first?.outcome == "lock-timeout" && attempts.last?.outcome == "succeeded", "\(attempts)")
                #expect(r.stdout.contains("migrate hit a lock timeout"), "\(r)")
                #expect(r.stdout.contains("(\(attempts.count) attempts)"), "the summary line counts them: \(r)")
                let status = try await daemon.ctl(["status", r.lines[0]])
                #expect(status.stdout.contains("attempts: lock-timeout"), "\(status)")
            } else {
                #expect(longest >= 5000, "\(framework.name): without lock settings the reader waits behind the ALTER (\(longest) ms)")
                #expect(migrate.attempts == nil)
            }
            // What ran: the framework's own status, before and after.
            let m = try #require(migrate.migrations, "\(migrate)")
            #expect(m.applied == [framework.second], "\(m)")
            #expect(m.versionBefore == framework.firstVersion && m.versionAfter == framework.secondVersion, "\(m)")
            #expect(m.pending.isEmpty)
            if withLocks {
                // Nothing pending now: skip-when-none-pending skips, saying so.
                let v3 = try framework.copy(to: work.file("\(withLocks)/v3"), second: true, locks: "skip-when-none-pending = true\n")
                let skipped = try await daemon.submitWait(app: "shop", release: "v3", dir: v3, env: env)
                #expect(skipped.status == 0, "\(skipped)")
                let task = try #require(try daemon.record(skipped.lines[0])?.tasks.first { $0.name == "migrate" })
                #expect(task.state == .skipped && task.reason?.hasPrefix("nothing pending (") == true, "\(task)")
                #expect(skipped.stdout.contains("migrate skipped: "), "\(skipped)")
            }
        }
        #expect(waits[false]! > waits[true]! * 3, "\(waits)")
        print("lock-safe migrations, \(framework.name): the reader's longest wait was \(waits[false]!) ms without lock settings, \(waits[true]!) ms with lock-timeout 1s")
        await daemon.cleanUp()
        await pg.remove()
    }

    @Test("Rails (pg): without lock settings the reader waits the full 6 s; with lock-timeout 1s and lock-retries 5 never over 1.5 s, and the release succeeds on a later attempt; the record says what ran")
    func rails() async throws { try await Self.exercise(.rails) }

    @Test("Django (psycopg2): the same")
    func django() async throws { try await Self.exercise(.django) }
}

/// The two real apps of the lock tests, written out for a test: release 1 creates `books`,
/// release 2 adds a column to it.
enum PostgresApps {
    static let djangoAvailable: Bool = runQuick(["/usr/bin/python3", "-c", "import django, psycopg2"]).status == 0

    enum Framework {
        case rails, django

        var name: String { self == .rails ? "Rails" : "Django" }
        /// The second migration as its status command names it.
        var second: String { self == .rails ? "20261207000000 Add title to books" : "books.0002_add_title" }
        var firstVersion: String { self == .rails ? "20261201000000" : "books.0001_initial" }
        var secondVersion: String { self == .rails ? "20261207000000" : "books.0002_add_title" }

        /// The app in `path`, with the second migration or not, `locks` in `[tasks.migrate]`.
        /// Rails: the expand/contract example (`RailsApp`) on PostgreSQL, without its contract
        /// step and its release.toml.
        func copy(to path: String, second: Bool, locks: String?) throws -> String {
            let release = locks.map { ["release.toml": "[tasks.migrate]\n" + $0] } ?? [:]
            if self == .rails {
                let app = try RailsApp.copy(to: path, without: ["release.toml", "db/post_migrate/20261207000001_remove_name_from_books.rb"]
                                                + (second ? [] : ["db/migrate/20261207000000_add_title_to_books.rb"]),
                                            replacing: PostgresApps.railsOnPostgres.merging(release) { $1 })
                return app
            }
            var files = PostgresApps.django.merging(release) { $1 }
            if second { files.merge(PostgresApps.djangoSecond) { $1 } }
            for (name, text) in files {
                let file = path + "/" + name
                try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try text.write(toFile: file, atomically: true, encoding: .utf8)
            }
            return path
        }
    }

    /// What the Rails example needs to run on PostgreSQL: the pg gem, and DATABASE_URL.
    static let railsOnPostgres: [String: String] = [
        "Gemfile": "source \"https://rubygems.org\"\ngem \"rails\", \"~> 6.1.7\"\ngem \"pg\"\n",
        "config/database.yml": "production:\n  adapter: postgresql\n  url: <%= ENV[\"DATABASE_URL\"] %>\n",
    ]

    static let django: [String: String] = [
        "manage.py": """
            import os, sys
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
            from django.core.management import execute_from_command_line
            execute_from_command_line(sys.argv)
            """,
        "shop/__init__.py": "",
        "shop/settings.py": """
            import os
            SECRET_KEY = "test"
            INSTALLED_APPS = ["books"]
            DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": os.environ["DB_NAME"],
                                     "USER": os.environ["DB_USER"], "PASSWORD": os.environ["DB_PASSWORD"],
                                     "HOST": os.environ["DB_HOST"], "PORT": os.environ["DB_PORT"]}}
            DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
            USE_TZ = True
            """,
        "books/__init__.py": "",
        "books/models.py": """
            from django.db import models

            class Book(models.Model):
                name = models.CharField(max_length=200, null=True)

                class Meta:
                    db_table = "books"
            """,
        "books/migrations/__init__.py": "",
        "books/migrations/0001_initial.py": """
            from django.db import migrations, models

            class Migration(migrations.Migration):
                initial = True
                dependencies = []
                operations = [
                    migrations.CreateModel(name="Book", fields=[
                        ("id", models.AutoField(primary_key=True, serialize=False)),
                        ("name", models.CharField(max_length=200, null=True)),
                    ], options={"db_table": "books"}),
                ]
            """,
    ]
    static let djangoSecond = [
        "books/migrations/0002_add_title.py": """
            from django.db import migrations, models

            class Migration(migrations.Migration):
                dependencies = [("books", "0001_initial")]
                operations = [migrations.AddField(model_name="book", name="title", field=models.CharField(max_length=200, null=True))]
            """,
    ]
}
