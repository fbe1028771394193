import Foundation

/// What an RMVPE golden set records beyond `GoldenIndex`: its `extra` object (`write_rmvpe_golden`).
public struct RMVPEGoldenExtra: Decodable, Sendable {
    public let padMode: String

    /// `extra` of `<folder>/index.json`.
    public static func load(goldenFolder folder: String) throws -> RMVPEGoldenExtra {
        try goldenExtra(RMVPEGoldenExtra.self, goldenFolder: folder)
    }
}
