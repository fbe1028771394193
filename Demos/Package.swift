// swift-tools-version:5.9
import PackageDescription

// The BLAS behind every matrix product: Accelerate on Apple platforms (imported directly in the
// source), OpenBLAS on Linux through the `COpenBLAS` system-library target.
#if os(Linux)
let blasTargets: [Target] = [
    .systemLibrary(
        name: "COpenBLAS",
        path: "Sources/COpenBLAS",
        pkgConfig: "openblas",
        providers: [.apt(["libopenblas-dev"])]
    ),
]
let blasDependencies: [Target.Dependency] = ["COpenBLAS"]
#else
let blasTargets: [Target] = []
let blasDependencies: [Target.Dependency] = []
#endif

let package = Package(
    name: "RVCNative",
    platforms: [.macOS(.v13), .iOS(.v16)],
    products: [
        .library(name: "RVCNative", targets: ["RVCNative"]),
        .executable(name: "RVCNativeMac", targets: ["RVCNativeMac"]),
    ],
    targets: blasTargets + [
        .target(
            name: "RVCNative",
            dependencies: blasDependencies
        ),
        .executableTarget(name: "RVCNativeMac", dependencies: ["RVCNative"]),
        .testTarget(name: "RVCNativeTests", dependencies: ["RVCNative"]),
    ]
)
