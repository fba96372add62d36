import Foundation
import ReleaseKit
import Testing

/// Expand and contract with a real Rails app (Debian's ruby-rails, SQLite): a column rename in
/// one deploy — the predeploy adds and backfills the new column, traffic "switches", the
/// postdeploy drops the old one — from `examples/rails-expand-contract`, released by a real
/// daemon. A postdeploy of a release whose predeploy failed is refused and the old column stays.
@Suite("rails expand and contract", .serialized, .enabled(if: RailsApp.isAvailable, "needs ruby-rails and ruby-sqlite3 (apt-get install ruby-rails ruby-sqlite3)"))
struct RailsPhaseTests {
    @Test("deploy 1's predeploy adds and backfills title, its postdeploy drops name; a failed predeploy's postdeploy is rejected and name stays")
    func columnRename() async throws {
        let daemon = try await DaemonProcess()
        let work = TempDir()
        defer { work.remove() }
        let database = work.file("bookshop.sqlite3")
        let env = ["RAILS_ENV": "production", "DATABASE_PATH": database, "RUN_MIGRATIONS_DURING_RELEASE": "true",
                   "RUN_MIGRATIONS_AFTER_DEPLOY": "true"]
        // v0: the app as it was, with only `name` (its own deploy, predeploy and postdeploy).
        let v0 = try RailsApp.copy(to: work.file("releases/v0"), without: ["db/migrate/20261207000000_add_title_to_books.rb",
                                                                         "db/post_migrate/20261207000001_remove_name_from_books.rb"])
        #expect(try await daemon.submitWait(app: "bookshop", release: "v0", dir: v0, env: env).status == 0)
        #expect(try await daemon.submitWait(app: "bookshop", release: "v0", dir: v0, env: env, extra: ["--phase", "postdeploy"]).status == 0)
        try RailsApp.sql(database, "INSERT INTO books (name) VALUES ('Dune'), ('Solaris')")
        #expect(try RailsApp.columns(database) == ["id", "name"])

        // v1: expand before traffic moves…
        let v1 = try RailsApp.copy(to: work.file("releases/v1"))
        let pre = try await daemon.submitWait(app: "bookshop", release: "v1", dir: v1, env: env)
        #expect(pre.status == 0, "\(pre)")
        #expect(pre.stdout.contains("AddTitleToBooks: migrated"), "\(pre)")
        #expect(!pre.stdout.contains("RemoveNameFromBooks"), "no contract step before traffic moves: \(pre)")
        #expect(try RailsApp.columns(database) == ["id", "name", "title"])
        #expect(try RailsApp.sql(database, "SELECT title FROM books ORDER BY id") == "Dune\nSolaris")
        // …traffic switches to v1 (the PaaS's part), then contract.
        let post = try await daemon.submitWait(app: "bookshop", release: "v1", dir: v1, env: env, extra: ["--phase", "postdeploy"])
        #expect(post.status == 0, "\(post)")
        #expect(post.stdout.contains("RemoveNameFromBooks: migrated"), "\(post)")
        #expect(try RailsApp.columns(database) == ["id", "title"])
        #expect(try daemon.record(post.lines[0])?.tasks.first { $0.name == "post-migrate" }?.state == .succeeded)

        // Another database at v0; v2 ships a broken migration after the expand step.
        let database2 = work.file("bookshop2.sqlite3")
        var env2 = env
        env2["DATABASE_PATH"] = database2
        #expect(try await daemon.submitWait(app: "shop2", release: "v0", dir: v0, env: env2).status == 0)
        let v2 = try RailsApp.copy(to: work.file("releases/v2"))
        try """
            class BreakEverything < ActiveRecord::Migration[6.1]
              def up
                raise "this migration is broken"
              end
            end
            """.write(toFile: v2 + "/db/migrate/20261207000002_break_everything.rb", atomically: true, encoding: .utf8)
        let failed = try await daemon.submitWait(app: "shop2", release: "v2", dir: v2, env: env2)
        #expect(failed.status == 1, "\(failed)")
        #expect(failed.stdout.contains("this migration is broken"), "\(failed)")
        // The PaaS would not switch; a postdeploy submitted anyway is refused, nothing runs.
        let refused = try await daemon.submitWait(app: "shop2", release: "v2", dir: v2, env: env2, extra: ["--phase", "postdeploy"])
        #expect(refused.status == 2, "\(refused)")
        #expect(try daemon.record(refused.lines[0])?.reason?.contains("the predeploy of shop2 v2 (deploy key shop2/v2) failed") == true)
        #expect(try RailsApp.columns(database2).contains("name"), "the old column is still there")
        await daemon.cleanUp()
    }
}

/// `examples/rails-expand-contract`, copied for a test, its Gemfile locked to the gems the
/// machine has (`bundle lock --local`: no network).
enum RailsApp {
    static let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/rails-expand-contract").path

    static let isAvailable: Bool = {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/ruby"), FileManager.default.isExecutableFile(atPath: "/usr/bin/bundle")
        else { return false }
        return runQuick(["/usr/bin/ruby", "-e", "require 'rails'; require 'sqlite3'"]).status == 0
    }()

    /// Copies the example to `path` (less `without`, with `replacing` written over it) and locks
    /// its Gemfile; returns `path`.
    static func copy(to path: String, without: [String] = [], replacing: [String: String] = [:]) throws -> String {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: example, toPath: path)
        for file in without { try FileManager.default.removeItem(atPath: path + "/" + file) }
        for (file, text) in replacing { try text.write(toFile: path + "/" + file, atomically: true, encoding: .utf8) }
        guard runQuick(["/usr/bin/bundle", "lock", "--local"], directory: path).status == 0 else {
            throw HarnessError("bundle lock --local failed in \(path)")
        }
        return path
    }

    /// Runs SQL on the SQLite database with Ruby's sqlite3 (the app's own driver); the rows,
    /// one per line, columns joined by "|".
    static func sql(_ database: String, _ statement: String) throws -> String {
        let r = runQuick(["/usr/bin/ruby", "-rsqlite3", "-e", "puts SQLite3::Database.new(ARGV[0]).execute(ARGV[1]).map { |r| r.join('|') }",
                          database, statement])
        guard r.status == 0 else { throw HarnessError("sqlite: \(statement) failed") }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func columns(_ database: String) throws -> [String] {
        try sql(database, "SELECT name FROM pragma_table_info('books')").split(separator: "\n").map(String.init)
    }
}
