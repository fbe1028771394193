import Foundation

/// A golden set's `index.json` (the bytes before the first NUL) and `golden.safetensors` (the bytes after):
/// the index and each kind's `extra` object, then every tensor read in the layout the stage runners ask for.
func fuzzGoldenSet(_ data: Data) throws {
    let (json, weights) = splitAtFirstNUL(data)
    let path = "fuzz/index.json"
    var index: GoldenIndex?
    allowingLibraryErrors { index = try GoldenIndex.parse(json, path: path) }
    allowingLibraryErrors { _ = try goldenExtra(RMVPEGoldenExtra.self, indexData: json, path: path) }
    allowingLibraryErrors { _ = try goldenExtra(PipelineGoldenExtra.self, indexData: json, path: path) }
    allowingLibraryErrors { _ = try goldenExtra(IndexGoldenExtra.self, indexData: json, path: path) }
    allowingLibraryErrors { _ = try goldenExtra(ContentEncoderGoldenExtra.self, indexData: json, path: path) }
    guard let weights else { return }
    let golden = GoldenSet(index: index, file: try SafeTensorsFile(bytes: weights, path: "fuzz/golden.safetensors"))
    for name in golden.file.keys {
        // Its stored axes in another order (as BCT is read as BTC), and axes it does not have.
        let wanted = String((golden.storedLayout(of: name) ?? "BTC").reversed())
        allowingLibraryErrors { _ = try golden.tensor(name, layout: wanted) }
        allowingLibraryErrors { _ = try golden.tensor(name, layout: "BTC") }
        allowingLibraryErrors { _ = try golden.int32Values(name) }
    }
}
