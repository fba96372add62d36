import Foundation
import Glibc
import SystemPackage
import Testing
@testable import ReleaseKit

/// The spool's durable transitions, each stopped at every point where the daemon may die,
/// then recovered: every release ends in exactly one final state, its request beside its
/// record, nothing left in `incoming/` or `running/`, and nothing that ran is made to run again.
@Suite("spool transitions and recovery")
struct SpoolTransitionTests {
    /// A fresh spool in a temporary folder.
    struct Fixture {
        let dir: String
        var spool: Spool

        init() throws {
            var template = Array("/tmp/releasekit-spool-XXXXXX".utf8CString)
            dir = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }!)
            spool = Spool(root: FilePath(dir + "/spool"))
            try spool.create()
            _ = try spool.takeOwnership()  // the daemon's modes: its records are believed
        }

        func remove() { try? FileManager.default.removeItem(atPath: dir) }

        /// A request waiting in `incoming/`.
        func submit() throws -> ReleaseRequest {
            let request = ReleaseRequest(id: ReleaseID.generate(), app: "shop", release: "v1", directory: "/srv/apps/shop/v1")
            try spool.submit(request)
            return request
        }

        /// The spool, stopping at `point` as if the daemon died there.
        func crashing(at point: CrashPoint?) -> Spool {
            var copy = spool
            copy.crashPoint = point
            return copy
        }

        func names(_ folder: Spool.Folder) -> [String] { spool.entries(folder).map(\.string).sorted() }

        /// The one final state of `id` after recovery, checking where every file is.
        func finalState(_ id: ReleaseID, sourceLocation: SourceLocation = #_sourceLocation) throws -> ReleaseState? {
            let inDone = spool.exists(spool.recordPath(.done, id.rawValue))
            let inRejected = spool.exists(spool.recordPath(.rejected, id.rawValue))
            #expect(!(inDone && inRejected), "two final records", sourceLocation: sourceLocation)
            #expect(!spool.exists(spool.requestPath(.incoming, id.rawValue)), "still in incoming/", sourceLocation: sourceLocation)
            #expect(!spool.exists(spool.requestPath(.running, id.rawValue)), "still in running/", sourceLocation: sourceLocation)
            #expect(!spool.exists(spool.recordPath(.running, id.rawValue)), "a progress record left", sourceLocation: sourceLocation)
            #expect(!spool.exists(spool.path(.cancel, id.rawValue)), "a cancel marker left", sourceLocation: sourceLocation)
            let folder: Spool.Folder = inDone ? .done : .rejected
            #expect(spool.exists(spool.requestPath(folder, id.rawValue)), "the request is not beside its record", sourceLocation: sourceLocation)
            return spool.record(in: folder, id: id.rawValue)?.state
        }
    }

    static func record(_ request: ReleaseRequest, _ state: ReleaseState) -> ReleaseRecord {
        var r = ReleaseRecord(id: request.id.rawValue, app: request.app, release: request.release, state: state)
        r.finishedAt = Date()
        return r
    }

    /// Runs a release through claim, progress and finish, stopping at `point`.
    static func release(_ f: Fixture, stoppingAt point: CrashPoint?) throws -> ReleaseRequest {
        let spool = f.crashing(at: point)
        let request = try f.submit()
        do {
            try spool.claim(request.id)
            var progress = record(request, .running)
            progress.tasks = [TaskRecord(name: "migrate", state: .running)]
            spool.recordProgress(progress)
            try spool.requestCancel(request.id)  // a cancel that came while it ran
            try spool.finish(record(request, .succeeded))
        } catch {
            guard error.operation == .simulatedCrash else { throw error }
        }
        return request
    }

    @Test("a release cut short at each point of its claim and finish ends in exactly one final state",
          arguments: [CrashPoint?.none, .claimed, .finishRecordRewritten, .finishRecordWritten, .finishRequestMoved])
    func releaseCrashPoints(_ point: CrashPoint?) throws {
        let f = try Fixture()
        defer { f.remove() }
        let request = try Self.release(f, stoppingAt: point)
        let outcome = f.spool.recover()
        let state = try f.finalState(request.id)
        switch point {
        case .claimed?:
            // It may have started: interrupted, never re-run.
            #expect(state == .interrupted)
            #expect(outcome.interrupted.map(\.id) == [request.id.rawValue])
            let record = try #require(f.spool.record(in: .done, id: request.id.rawValue))
            #expect(record.reason?.contains("it is not re-run by itself") == true)
            #expect(record.tasks.isEmpty, "no progress was recorded before the crash")
        case .finishRecordRewritten?:
            // The outcome was still in running/, the request too: it was running.
            #expect(state == .interrupted)
            #expect(outcome.interrupted.map(\.id) == [request.id.rawValue])
            #expect(f.spool.record(in: .running, id: request.id.rawValue) == nil)
        default:
            // The outcome was recorded before the crash: it stands.
            #expect(state == .succeeded)
            #expect(outcome.interrupted.isEmpty)
        }
        // A second recovery finds nothing more to do.
        let again = f.spool.recover()
        #expect(again.interrupted.isEmpty && again.completed == 0)
        #expect(try f.finalState(request.id) == state)
    }

    @Test("a release that died with a task running: that task cancelled, those after it not-run")
    func interruptedWithProgress() throws {
        let f = try Fixture()
        defer { f.remove() }
        let request = try f.submit()
        try f.spool.claim(request.id)
        var progress = Self.record(request, .running)
        progress.startedAt = Date()
        progress.tasks = [TaskRecord(name: "migrate", state: .succeeded), TaskRecord(name: "seed", state: .running),
                          TaskRecord(name: "notify", state: .pending)]
        f.spool.recordProgress(progress)
        #expect(f.spool.recover().interrupted.count == 1)
        #expect(try f.finalState(request.id) == .interrupted)
        let record = try #require(f.spool.record(in: .done, id: request.id.rawValue))
        #expect(record.tasks.map(\.state) == [.succeeded, .cancelled, .notRun])
        #expect(record.tasks[1].reason == "interrupted while running")
        #expect(record.durationMs != nil)
    }

    @Test("progress is one file per release: rewritten in place as each task starts, a shorter record cut to its length")
    func progressRewrittenInPlace() throws {
        let f = try Fixture()
        defer { f.remove() }
        let request = try f.submit()
        try f.spool.claim(request.id)
        var progress = Self.record(request, .running)
        progress.tasks = [TaskRecord(name: "migrate", state: .running, reason: String(repeating: "long ", count: 100)),
                          TaskRecord(name: "seed", state: .pending)]
        f.spool.recordProgress(progress)
        let path = f.spool.recordPath(.running, request.id.rawValue).string
        var first = stat(), second = stat()
        #expect(lstat(path, &first) == 0)
        progress.tasks = [TaskRecord(name: "migrate", state: .succeeded), TaskRecord(name: "seed", state: .running)]
        f.spool.recordProgress(progress)
        #expect(lstat(path, &second) == 0)
        #expect(second.st_ino == first.st_ino, "a new file was made for the second task's progress")
        #expect(second.st_size < first.st_size && second.st_size == off_t(progress.encoded().count), "the longer record's end is left")
        #expect(f.spool.record(in: .running, id: request.id.rawValue)?.tasks.map(\.state) == [.succeeded, .running])
        #expect(f.names(.tmp).isEmpty)
    }

    @Test("a rejection cut short after its record ends rejected, with the file beside the record")
    func rejectionCrashPoint() throws {
        let f = try Fixture()
        defer { f.remove() }
        let spool = f.crashing(at: .rejectRecordWritten)
        let request = try f.submit()
        let name = SpoolName("\(request.id).json")
        #expect(throws: SpoolError.self) { try spool.reject(name, stem: request.id.rawValue, record: Self.record(request, .rejected)) }
        #expect(f.names(.incoming) == ["\(request.id).json"], "the crash left the request in incoming/")
        #expect(f.spool.recover().completed == 1)
        #expect(try f.finalState(request.id) == .rejected)
    }

    @Test("a cancel of a waiting release cut short after its record ends cancelled")
    func cancelCrashPoint() throws {
        let f = try Fixture()
        defer { f.remove() }
        let spool = f.crashing(at: .cancelRecordWritten)
        let request = try f.submit()
        try spool.requestCancel(request.id)
        #expect(throws: SpoolError.self) { try spool.finishQueued(Self.record(request, .cancelled)) }
        #expect(f.spool.recover().completed == 1)
        #expect(try f.finalState(request.id) == .cancelled)
    }

    @Test("recovery cut short after an interrupted record ends interrupted on the next recovery, once")
    func recoveryCrashPoint() throws {
        let f = try Fixture()
        defer { f.remove() }
        let request = try Self.release(f, stoppingAt: .claimed)
        let first = f.crashing(at: .recoveryRecordWritten).recover()
        #expect(first.interrupted.isEmpty && first.failed.count == 1, "the record is written, the move is not")
        let second = f.spool.recover()
        #expect(second.interrupted.isEmpty && second.completed == 1, "the record found in done/: completed, not interrupted twice")
        #expect(try f.finalState(request.id) == .interrupted)
    }

    @Test("a waiting request is left alone by recovery; progress records without a request go")
    func recoveryLeavesTheQueue() throws {
        let f = try Fixture()
        defer { f.remove() }
        let waiting = try f.submit()
        var stray = Self.record(waiting, .running)
        stray.id = ReleaseID.generate().rawValue
        f.spool.recordProgress(stray)
        let outcome = f.spool.recover()
        #expect(outcome.interrupted.isEmpty && outcome.completed == 0)
        #expect(f.names(.incoming) == ["\(waiting.id).json"])
        #expect(f.names(.running).isEmpty)
    }

    @Test("a record of anyone but the daemon in its folders is not believed")
    func foreignRecords() throws {
        let f = try Fixture()
        defer { f.remove() }
        let request = try Self.release(f, stoppingAt: nil)
        #expect(f.spool.record(in: .done, id: request.id.rawValue)?.state == .succeeded)
        guard geteuid() == 0 else { return }  // (giving a file away needs root)
        chown(f.spool.recordPath(.done, request.id.rawValue).string, 65534, 65534)
        #expect(f.spool.record(in: .done, id: request.id.rawValue) == nil, "a record owned by someone else")
        chown(f.spool.recordPath(.done, request.id.rawValue).string, geteuid(), getegid())
        chmod(f.dir + "/spool/done", 0o2770)
        #expect(f.spool.record(in: .done, id: request.id.rawValue) == nil, "done/ writable by its group")
    }
}
