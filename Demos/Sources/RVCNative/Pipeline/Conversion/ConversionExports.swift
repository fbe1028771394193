import Foundation

/// The exports one conversion reads (`Converter(assets:)`'s names), checked but not yet built: each manifest
/// read and its configuration validated, each weights file's header read and checked against its manifest
/// (tensor list, shapes, dtypes, XXH64 checksums), and the exports checked against each other (a voice with
/// pitch needs RMVPE, the index must be as wide as the voice's features).
///
/// This is everything loading can find wrong short of building a network (a weight a model cannot use), so
/// both conversion paths do it first and a broken file fails before any audio is worked on. Checking reads
/// every byte (the checksums), a few chunks at a time, and keeps none: each weights file stays open, and a
/// network is read from it again when built.
struct ConversionExports {
    let voice: (configuration: Configuration, weights: SafeTensorsFile)
    let contentEncoder: (configuration: ContentEncoderConfiguration, weights: SafeTensorsFile)
    /// Nil for a voice without pitch (its RMVPE, even when named, is not read).
    let rmvpe: (configuration: RMVPEConfiguration, weights: SafeTensorsFile)?
    let index: (configuration: IndexConfiguration, weights: SafeTensorsFile)?

    /// In the order `Converter(assets:)` always loaded them: voice, content encoder, RMVPE, index.
    init(assets: String, voice: String, hubert: String, rmvpe: String?, index: String?) throws {
        let voiceExport = try Synthesizer.checkedExport(assetsDirectory: assets, modelName: voice)
        let voiceConfiguration = voiceExport.configuration
        try voiceConfiguration.validate()
        self.voice = (voiceConfiguration, voiceExport.weights)

        let hubertExport = try loadVerifiedExport(directory: assets, name: hubert,
                                                  readManifest: ContentEncoderManifest.load(path:), common: \.common)
        try hubertExport.manifest.configuration.validate()
        contentEncoder = (hubertExport.manifest.configuration, hubertExport.weights)

        if voiceConfiguration.f0 {
            guard let rmvpe else { throw ConversionError.rmvpeNeeded(voice: voice) }
            let export = try loadVerifiedExport(directory: assets, name: rmvpe, readManifest: RMVPEManifest.load(path:),
                                                common: \.common)
            try export.manifest.configuration.validate()
            self.rmvpe = (export.manifest.configuration, export.weights)
        } else {
            self.rmvpe = nil
        }

        self.index = try index.map { name in
            let export = try loadVerifiedExport(directory: assets, name: name, readManifest: IndexManifest.load(path:),
                                                common: \.common)
            try export.manifest.configuration.validate()
            return (export.manifest.configuration, export.weights)
        }
        if let width = self.index?.configuration.d, width != voiceConfiguration.featureDim {
            throw ConversionError.indexWidth(index: width, voice: voiceConfiguration.featureDim)
        }
    }

    func builtSynthesizer() throws -> Synthesizer {
        try Synthesizer(configuration: voice.configuration, weights: voice.weights)
    }

    func builtContentEncoder() throws -> ContentEncoder {
        try ContentEncoder(configuration: contentEncoder.configuration, weights: contentEncoder.weights)
    }

    func builtRMVPE() throws -> RMVPE? {
        try rmvpe.map { try RMVPE(configuration: $0.configuration, weights: $0.weights) }
    }

    func builtIndex() throws -> IVFFlatIndex? {
        try index.map { try IVFFlatIndex(configuration: $0.configuration, weights: $0.weights) }
    }
}
