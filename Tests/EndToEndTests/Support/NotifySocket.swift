import Foundation
import Glibc
import Synchronization

/// A real `NOTIFY_SOCKET`: a datagram socket the test binds (a path, or `@abstract`), collecting
/// every sd_notify message the daemon sends, with the time it arrived.
final class NotifySocket: Sendable {
    struct Message: Sendable {
        var text: String
        var at: ContinuousClock.Instant
        var fields: [String: String] {
            var d: [String: String] = [:]
            for line in text.split(separator: "\n") {
                if let eq = line.firstIndex(of: "=") { d[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
            }
            return d
        }
    }

    /// The value for `NOTIFY_SOCKET`.
    let address: String
    private let fd: Int32
    private let messages = Mutex<[Message]>([])
    private let closed = Atomic<Bool>(false)

    init(abstract: Bool = false, directory: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: \(errno)") }
        let name = abstract ? "@releasectl-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" : directory + "/notify-\(UInt32.random(in: 0...UInt32.max)).sock"
        address = name
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in bytes.enumerated() where i < p.count { p[i] = b }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        let rc = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard rc == 0 else { throw HarnessError("bind \(name): \(errno)") }
        let socketFD = fd
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while !closed.load(ordering: .relaxed) {
                var p = pollfd(fd: socketFD, events: Int16(POLLIN), revents: 0)
                if poll(&p, 1, 100) <= 0 { continue }
                let n = buffer.withUnsafeMutableBytes { recv(socketFD, $0.baseAddress, $0.count, 0) }
                if n <= 0 { continue }
                let text = String(decoding: buffer[0..<n], as: UTF8.self)
                messages.withLock { $0.append(Message(text: text, at: .now)) }
            }
        }
    }

    deinit { close() }

    func close() {
        if !closed.exchange(true, ordering: .relaxed) {
            Thread.sleep(forTimeInterval: 0.15)
            Glibc.close(fd)
        }
    }

    var all: [Message] { messages.withLock { $0 } }

    /// Waits (bounded) for a message satisfying `predicate`, returning it.
    @discardableResult
    func wait(for what: String, timeout: Duration = .seconds(20), after index: Int = 0, _ predicate: (Message) -> Bool) async throws -> (Message, Int) {
        var found: (Message, Int)?
        try await eventually("sd_notify message: \(what) (got: \(all.map(\.text)))", timeout: timeout) {
            let msgs = all
            for i in index..<msgs.count where predicate(msgs[i]) {
                found = (msgs[i], i)
                return true
            }
            return false
        }
        return found!
    }
}
