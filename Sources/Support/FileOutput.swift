import Glibc
import SystemPackage

/// Writes bytes to a file descriptor in full: short writes are continued and EINTR retried
/// (the one place this loop is written). For output whose failure there is nothing to do
/// about (a log line, a message on stderr), the result may be ignored.
public enum FileOutput {
    @discardableResult
    public static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        do throws(Errno) { try Syscalls.writeAll(fd, bytes); return true } catch { return false }
    }

    @discardableResult
    public static func write(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { write(fd, $0) }
    }

    @discardableResult
    public static func write(_ fd: Int32, _ text: String) -> Bool {
        write(fd, Array(text.utf8))
    }
}
