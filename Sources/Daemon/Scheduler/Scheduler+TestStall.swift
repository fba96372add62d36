import Glibc

extension Scheduler {
    /// Blocks the event loop's thread, as a deadlock would: the hook of the watchdog tests
    /// (`--test-stall-on-sigusr2`), for `$RELEASED_TEST_STALL_SECONDS` (default an hour, so
    /// the watchdog fires). Never reached without that hidden flag.
    func stall() {
        let seconds = getenv("RELEASED_TEST_STALL_SECONDS").flatMap { UInt32(String(cString: $0)) } ?? 3600
        sleep(seconds)
    }
}
