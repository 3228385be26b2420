// swift-tools-version: 6.1
// The benchmark suite: Reactor's servers and event loop beside their peers (SwiftNIO, a C epoll
// floor), one run, one machine. A separate package so that the library never depends on swift-nio.
// Run it with `swift run -c release bench-runner [--quick]` (README.md).
import PackageDescription

let package = Package(
    name: "reactor-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // The library under test, by path. Its `reactor` executable is built at the repository root
        // by the runner (`swift build -c release --product reactor`) and started as a server there.
        .package(name: "swift-reactor", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
    ],
    targets: [
        .executableTarget(
            name: "nio-echo",
            dependencies: [.product(name: "NIOPosix", package: "swift-nio")]
        ),
        .executableTarget(
            name: "nio-http",
            dependencies: [
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The timer, wake-up and task workloads, and their Reactor and SwiftNIO sides.
        .target(name: "CAffinity"),
        .target(name: "LoopBench", dependencies: ["CAffinity"]),
        .executableTarget(
            name: "reactor-loop",
            dependencies: ["LoopBench", .product(name: "Reactor", package: "swift-reactor")]
        ),
        .executableTarget(
            name: "nio-loop",
            dependencies: ["LoopBench", .product(name: "NIOPosix", package: "swift-nio")]
        ),
        .executableTarget(name: "bench-runner"),
    ],
    swiftLanguageModes: [.v6]
)
