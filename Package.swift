// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "swift-reactor",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Reactor", targets: ["Reactor"]),
        .library(name: "ReactorServers", targets: ["ReactorServers"]),
        .executable(name: "reactor", targets: ["reactor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .target(name: "CReactor"),
        .target(
            name: "Reactor",
            dependencies: [
                "CReactor",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "ReactorServers", dependencies: ["Reactor"]),
        .executableTarget(
            name: "reactor",
            dependencies: [
                "Reactor",
                "ReactorServers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "ReactorTests", dependencies: ["Reactor", "ReactorServers", "CReactor"]),
    ],
    swiftLanguageModes: [.v6]
)
