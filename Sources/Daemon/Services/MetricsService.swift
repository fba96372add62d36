import ReleaseSupport
import ServiceLifecycle

/// Writes the metrics file (`--metrics-file`) after changes: at once after the first, then at
/// most once a second while changes go on, so 10,000 arrivals cost a handful of writes, not
/// 20,000. A last write at shutdown.
struct MetricsService: Service {
    let slot: MetricsSlot

    func run() async throws {
        for await _ in slot.changed.cancelOnGracefulShutdown() {
            if let metrics = slot.metrics { await BlockingCall.run { metrics.writeIfChanged() } }
            try? await Task.sleep(for: .seconds(1))
        }
        if let metrics = slot.metrics { await BlockingCall.run { metrics.writeIfChanged() } }
    }
}
