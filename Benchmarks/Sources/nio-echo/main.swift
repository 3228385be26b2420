// SwiftNIO's echo server, the peer Reactor is measured against: NIOPosix with one event loop and a
// plain inbound handler, as a SwiftNIO user would write it. Binds 127.0.0.1 only.
//
//   nio-echo --port 9000
import Dispatch
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Writes back what it reads; flushes once per read burst.
final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
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
    let usage = "usage: nio-echo --port PORT\n"
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
                try channel.pipeline.syncOperations.addHandler(EchoHandler())
            }
        }
    let server = try bootstrap.bind(host: "127.0.0.1", port: port).wait()

    // SIGTERM closes the listener, so the process leaves through exit() and LD_PRELOAD tools report.
    signal(SIGTERM, SIG_IGN)
    let termination = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
    termination.setEventHandler { server.close(promise: nil) }
    termination.resume()

    try server.closeFuture.wait()
    try group.syncShutdownGracefully()
}

try serve(port: port(from: CommandLine.arguments))
