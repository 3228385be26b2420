// SwiftNIO's HTTP/1.1 plaintext server, the peer for `wrk`: NIOHTTP1's standard pipeline, one event
// loop, any GET answered 200 "Hello, World!" with keep-alive. Binds 127.0.0.1 only.
//
//   nio-http --port 8080
import Dispatch
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Answers every request with the same 13-byte body; flushes once per read burst.
final class HelloHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var keepAlive = true
    private let body: ByteBuffer
    private let headers: HTTPHeaders = [
        "Content-Type": "text/plain",
        "Content-Length": "13",
    ]

    init() {
        body = ByteBuffer(string: "Hello, World!")
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            keepAlive = request.isKeepAlive
        case .body:
            break
        case .end:
            let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            if keepAlive {
                context.write(wrapOutboundOut(.end(nil)), promise: nil)
            } else {
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                    channel.close(promise: nil)
                }
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

func port(from arguments: [String]) -> Int {
    if let index = arguments.firstIndex(of: "--port"), index + 1 < arguments.count,
       let port = Int(arguments[index + 1]) {
        return port
    }
    let usage = "usage: nio-http --port PORT\n"
    _ = usage.withCString { write(2, $0, strlen($0)) }
    exit(64)
}

// Top-level code is main-actor isolated; the servers' closures run on NIO's and Dispatch's threads,
// so the setup lives in a nonisolated function.
func serve(port: Int) throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let bootstrap = ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 1024)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                try channel.pipeline.syncOperations.addHandler(HelloHandler())
            }
        }
    let server = try bootstrap.bind(host: "127.0.0.1", port: port).wait()

    signal(SIGTERM, SIG_IGN)
    let termination = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
    termination.setEventHandler { server.close(promise: nil) }
    termination.resume()

    try server.closeFuture.wait()
    try group.syncShutdownGracefully()
}

try serve(port: port(from: CommandLine.arguments))
