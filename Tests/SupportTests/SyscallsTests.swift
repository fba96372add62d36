import Foundation
import Glibc
import ReleaseSupport
import SystemPackage
import Testing

/// The syscall shim and its neighbours: listings that keep names' bytes, reads of kernel files
/// and small files that never block on a FIFO, quoting of untrusted input, blocking calls that
/// never wait behind each other.
@Suite("system support")
struct SyscallsTests {
    static func temporaryFolder() throws -> String {
        let path = NSTemporaryDirectory() + "releasectl-support-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test("a listing has every entry but . and .., a name that is not UTF-8 with its bytes; by path or by an open folder")
    func listing() throws {
        let dir = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let odd: [UInt8] = [0x66, 0xff, 0x2e, 0x6a]  // "f\xff.j"
        let fd = open(dir + "/" + String(decoding: [0x61], as: UTF8.self), O_CREAT | O_WRONLY, 0o600)
        close(fd)
        let path = Array(dir.utf8) + [47] + odd + [0]
        close(path.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_CREAT | O_WRONLY, 0o600) } })
        let names = try Syscalls.listDirectory(Array(dir.utf8CString)).sorted { $0.lexicographicallyPrecedes($1) }
        #expect(names == [[0x61], odd])
        let folder = try Syscalls.open(FilePath(dir), O_RDONLY | O_DIRECTORY)
        defer { Syscalls.close(folder) }
        for _ in 0..<2 {
            var viaFD: [[UInt8]] = []
            try Syscalls.forEachEntry(inDirectory: folder) { viaFD.append(Array($0)) }
            #expect(viaFD.sorted { $0.lexicographicallyPrecedes($1) } == names, "the open folder is read whole each time")
        }
    }

    @Test("small files: a FIFO or a folder is refused without blocking; a kernel file is read in one go")
    func smallFiles() throws {
        let dir = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        mkfifo(dir + "/fifo", 0o600)
        #expect(throws: Errno.self) { try SmallFile.read(FilePath(dir + "/fifo"), limit: 100) }
        #expect(throws: Errno.self) { try SmallFile.read(FilePath(dir), limit: 100) }
        try "a line\n".write(toFile: dir + "/f", atomically: true, encoding: .utf8)
        #expect(try SmallFile.read(FilePath(dir + "/f"), limit: 3) == Array("a l".utf8))
        var buffer = [UInt8](repeating: 0, count: 256)
        let stat = try #require(Syscalls.readStart("/proc/self/stat", into: &buffer))
        #expect(String(decoding: stat, as: UTF8.self).hasPrefix("\(getpid()) ("))
        #expect(Syscalls.readStart(dir + "/nonexistent", into: &buffer) == nil)
    }

    @Test("a quoted token is cut at its limit, its quotes and controls escaped")
    func quoting() {
        #expect(Quoting.quoted("a\"b\\c\n\u{1b}[2J", limit: 40) == #""a\"b\\c\n\u{1b}[2J""#)
        #expect(Quoting.quoted(String(repeating: "x", count: 50), limit: 40) == "\"" + String(repeating: "x", count: 40) + "…\"")
    }

    @Test("blocking calls run at once on threads of their own: two that wait for each other both finish")
    func blockingCalls() async {
        let fds = UnsafeMutablePointer<Int32>.allocate(capacity: 2)
        defer { fds.deallocate() }
        pipe(fds)
        let (r, w) = (fds[0], fds[1])
        async let reader: Int = BlockingCall.run { var b: UInt8 = 0; return read(r, &b, 1) }
        async let writer: Int = BlockingCall.run { var b: UInt8 = 7; return write(w, &b, 1) }
        let (got, put) = await (reader, writer)
        #expect(got == 1 && put == 1)
        close(r)
        close(w)
    }
}
