import Foundation

/// What an RMVPE golden set records beyond `GoldenIndex`: its `extra` object (`write_rmvpe_golden`).
public struct RMVPEGoldenExtra: Decodable, Sendable {
    public let padMode: String

    private struct Wrapper: Decodable { let extra: RMVPEGoldenExtra }

    /// `extra` of `<folder>/index.json`.
    public static func load(goldenFolder folder: String) throws -> RMVPEGoldenExtra {
        let path = URL(fileURLWithPath: folder).appendingPathComponent("index.json").path
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            return try VoiceManifest.decoder().decode(Wrapper.self, from: data).extra
        } catch let error as DecodingError {
            throw RVCError.goldenIndexUnreadable(path: path, reason: describeDecodingError(error))
        } catch {
            throw RVCError.goldenIndexUnreadable(path: path, reason: "\(error)")
        }
    }
}
