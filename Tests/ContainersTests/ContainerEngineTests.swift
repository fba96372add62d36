import ReleaseContainers
import Testing

/// The engine's environment and its commands, without an engine: what of the daemon's
/// environment an engine gets, and how a command's output and failure are read.
@Suite("container engine")
struct ContainerEngineTests {
    @Test("the engine gets only what configures an engine: never the loader's variables, the service manager's or anything else")
    func environment() {
        let daemon = ["PATH=/usr/bin:/bin", "CONTAINERS_CONF=/etc/c.conf", "CONTAINERS_STORAGE_CONF=/etc/s.conf", "HOME=/root",
                      "LD_PRELOAD=/tmp/evil.so", "LD_LIBRARY_PATH=/tmp", "XTABLES_LIBDIR=/tmp/xt", "MODPROBE_OPTIONS=-C /tmp/m",
                      "NOTIFY_SOCKET=/run/systemd/notify", "WATCHDOG_USEC=1", "GCONV_PATH=/tmp", "http_proxy=http://p:3128",
                      "SECRET=x", "CONTAINERS", "=odd"]
        #expect(ContainerEngine.engineEnvironment(daemon) == ["PATH=/usr/bin:/bin", "CONTAINERS_CONF=/etc/c.conf",
                                                               "CONTAINERS_STORAGE_CONF=/etc/s.conf", "HOME=/root", "http_proxy=http://p:3128"])
    }

    @Test("a command's outputs are read apart, its status kept, and the engine's own message is its last 'Error: ' line")
    func command() {
        let r = EngineCommand.run("/bin/sh", ["-c", "echo out; echo 'Error: no such image' >&2; echo warning >&2; exit 125"],
                                  environment: ["PATH=/usr/bin:/bin"])
        #expect(r.status == 125 && r.output == "out\n")
        #expect(r.message == "no such image")
        let missing = EngineCommand.run("/nonexistent/podman", [], environment: [])
        #expect(missing.status == 127 && missing.message.hasPrefix("cannot run /nonexistent/podman"), "\(missing.message)")
    }
}
