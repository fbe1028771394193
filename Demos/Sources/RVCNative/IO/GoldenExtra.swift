import Foundation

/// The `extra` object of `<folder>/index.json` decoded as `Extra`: the facts each kind of golden set records
/// beyond `GoldenIndex` (`RMVPEGoldenExtra`, `IndexGoldenExtra`).
func goldenExtra<Extra: Decodable>(_ type: Extra.Type, goldenFolder folder: String) throws -> Extra {
    let path = URL(fileURLWithPath: folder).appendingPathComponent("index.json").path
    let data: Data
    do {
        data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
        throw RVCError.goldenIndexUnreadable(path: path, reason: "\(error)")
    }
    return try goldenExtra(type, indexData: data, path: path)
}

/// `goldenExtra` of index.json bytes already read; `path` names them in errors.
func goldenExtra<Extra: Decodable>(_ type: Extra.Type, indexData data: Data, path: String) throws -> Extra {
    do {
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
