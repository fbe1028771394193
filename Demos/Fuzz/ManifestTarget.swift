import Foundation

/// The same bytes through every manifest reader (voice, RMVPE, content encoder, index), each checking its
/// kind, its format version, its weights file name and its configuration block.
func fuzzManifests(_ data: Data) throws {
    let path = "fuzz.manifest.json"
    allowingLibraryErrors {
        let manifest = try VoiceManifest.parse(data, path: path)
        try manifest.configuration?.validate()
    }
    allowingLibraryErrors { _ = try RMVPEManifest.parse(data, path: path) }
    allowingLibraryErrors { try ContentEncoderManifest.parse(data, path: path).configuration.validate() }
    allowingLibraryErrors { _ = try IndexManifest.parse(data, path: path) }
}
