import Foundation

/// Strict weight loading of each kind of model from a manifest (the bytes before the first NUL) and its
/// weights (the bytes after): the manifest of whichever kind it reads as, the check of the weights against
/// it, then the model built from them (every key, shape and dtype checked, none left unread).
func fuzzWeightLoading(_ data: Data) throws {
    let (json, bytes) = splitAtFirstNUL(data)
    let path = "fuzz.manifest.json"
    guard let bytes else { return }
    let weights = try SafeTensorsFile(bytes: bytes, path: "fuzz.safetensors")
    // The checksums almost never match fuzzed bytes; the models' own checks must hold without them.
    allowingLibraryErrors {
        let manifest = try VoiceManifest.parse(json, path: path)
        allowingLibraryErrors { try manifest.verify(weights); explain("the weights match the manifest") }
        guard let configuration = manifest.configuration else { return }
        _ = try Synthesizer(configuration: configuration, weights: weights)
        explain("loaded a voice")
    }
    allowingLibraryErrors {
        let manifest = try RMVPEManifest.parse(json, path: path)
        allowingLibraryErrors { try manifest.common.verify(weights); explain("the weights match the manifest") }
        _ = try RMVPE(configuration: manifest.configuration, weights: weights)
        explain("loaded RMVPE")
    }
    allowingLibraryErrors {
        let manifest = try ContentEncoderManifest.parse(json, path: path)
        allowingLibraryErrors { try manifest.common.verify(weights); explain("the weights match the manifest") }
        _ = try ContentEncoder(configuration: manifest.configuration, weights: weights)
        explain("loaded a content encoder")
    }
}
