import Foundation

/// The `extra` object of `<folder>/index.json` decoded as `Extra`: the facts each kind of golden set records
/// beyond `GoldenIndex` (`RMVPEGoldenExtra`, `IndexGoldenExtra`).
func goldenExtra<Extra: Decodable>(_ type: Extra.Type, goldenFolder folder: String) throws -> Extra {
    let path = URL(fileURLWithPath: folder).appendingPathComponent("index.json").path
    do {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try VoiceManifest.decoder().decode(GoldenExtraWrapper<Extra>.self, from: data).extra
    } catch let error as DecodingError {
        throw RVCError.goldenIndexUnreadable(path: path, reason: describeDecodingError(error))
    } catch {
        throw RVCError.goldenIndexUnreadable(path: path, reason: "\(error)")
    }
}

private struct GoldenExtraWrapper<Extra: Decodable>: Decodable {
    let extra: Extra
}
