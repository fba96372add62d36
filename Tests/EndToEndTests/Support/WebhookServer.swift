import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A real HTTP server on 127.0.0.1 that records every request it gets and answers with the
/// statuses it is told, in order (then 200).
final class WebhookServer: Sendable {
    struct Received: Sendable {
        var method: String
        var uri: String
        var headers: [String: String]
        var body: Data
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
    }

    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let channel: any Channel
    final class Store: Sendable {
        let m: Mutex<(received: [Received], statuses: [Int])>
        init(_ statuses: [Int]) { m = Mutex(([], statuses)) }
    }

    private let state: Store
    let port: Int

    init(statuses: [Int] = []) async throws {
        let state = Store(statuses)
        self.state = state
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(state: state))
                }
            }
        channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress!.port!
    }

    var url: String { "http://127.0.0.1:\(port)/hook" }
    var received: [Received] { state.m.withLock { $0.received } }

    func shutdown() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        // @unchecked: NIO calls a handler on its channel's event loop only.
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let state: Store
        var head: HTTPRequestHead?
        var body = Data()

        init(state: Store) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h):
                head = h
                body = Data()
            case .body(var b):
                body.append(contentsOf: b.readBytes(length: b.readableBytes) ?? [])
            case .end:
                guard let head else { return }
                var headers: [String: String] = [:]
                for (k, v) in head.headers { headers[k.lowercased()] = v }
                let status = state.m.withLock { s -> Int in
                    s.received.append(Received(method: "\(head.method)", uri: head.uri, headers: headers, body: body))
                    return s.statuses.isEmpty ? 200 : s.statuses.removeFirst()
                }
                var responseHeaders = HTTPHeaders()
                responseHeaders.add(name: "Content-Length", value: "2")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .init(statusCode: status), headers: responseHeaders))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "ok")))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
