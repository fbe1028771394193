import Foundation

/// An index export's manifest (the bytes before the first NUL) and weights (the bytes after): the manifest,
/// the check of the weights against it, the index built from them, then one search of two frames, so an index
/// the reader accepts is one the search can run on.
func fuzzIndexExport(_ data: Data) throws {
    let (json, bytes) = splitAtFirstNUL(data)
    let manifest = try IndexManifest.parse(json, path: "fuzz.manifest.json")
    guard let bytes else { return }
    let weights = try SafeTensorsFile(bytes: bytes, path: "fuzz.safetensors")
    // The checksums almost never match fuzzed bytes; the index's own checks must hold without them.
    allowingLibraryErrors { try manifest.common.verify(weights); explain("the weights match the manifest") }
    let index = try IVFFlatIndex(configuration: manifest.configuration, weights: weights)
    _ = try index.blend(Tensor(zeros: [1, 2, index.d]), indexRate: 0.75)
    explain("loaded and searched an index")
}
