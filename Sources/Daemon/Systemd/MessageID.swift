/// Fixed `MESSAGE_ID`s of the daemon's milestones, described in `systemd/released.catalog`
/// (made once with `systemd-id128 new`).
public enum MessageID {
    public static let releaseStarted = "1bf7496297ab4decad338e40114bfe32"
    public static let releaseSucceeded = "3d8e5ccf4805415186be0ff8e96b9ac4"
    public static let releaseFailed = "f0a2e52c71664604868356475a44e60e"
    public static let releaseCancelled = "059a9aeb42e946f3be1947dd835e4e4b"
    public static let releaseInterrupted = "5a73f194e1064f5b9228157b92c59f33"
    public static let releaseRejected = "dfbf08f353364db5bb810d358efad0ff"
}
