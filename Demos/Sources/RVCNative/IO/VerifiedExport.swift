import Foundation

/// `<directory>/<name>.manifest.json`, read by `readManifest`, and the weights file it names, checked against
/// it (tensor list, shapes, dtypes, XXH64 checksums): what every model's `load(assetsDirectory:modelName:)`
/// starts from. `common` picks the fields every manifest has out of the model's manifest.
func loadVerifiedExport<Manifest>(
    directory: String, name: String, readManifest: (String) throws -> Manifest, common: (Manifest) -> VoiceManifest
) throws -> (manifest: Manifest, weights: SafeTensorsFile) {
    let folder = URL(fileURLWithPath: directory)
    let manifest = try readManifest(folder.appendingPathComponent("\(name).manifest.json").path)
    let weights = try SafeTensorsFile(path: folder.appendingPathComponent(common(manifest).weightsFile).path)
    try common(manifest).verify(weights)
    return (manifest, weights)
}
