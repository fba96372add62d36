import ReleaseKit
import ReleaseSupport

extension Masking {
    /// Up to this many bytes of env names and values, the masking is built where it is asked
    /// for: it takes microseconds, less than handing it to a thread of its own and back.
    static let inlineEnvBytes = 16 * 1024

    /// The masking of a release's env. A large env (a request full of long secrets) is built on
    /// a thread of its own: it takes a while, and must not hold a thread of the cooperative pool
    /// meanwhile.
    static func forRelease(env: [String: String]) async -> Masking {
        let size = env.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        if size <= inlineEnvBytes { return Masking(env: env) }
        return await BlockingCall.run { Masking(env: env) }
    }
}
