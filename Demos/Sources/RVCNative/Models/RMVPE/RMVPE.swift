import Foundation

/// RMVPE pitch extraction (upstream `rvc.lib.rmvpe.RMVPE.infer_from_audio`): 16 kHz audio -> log-mel ->
/// `mel2hidden` (pad the frames to a multiple of 32, run E2E, crop) -> `decode` (salience -> f0 in Hz).
public struct RMVPE: Sendable {
    public let configuration: RMVPEConfiguration
    public let melSpectrogram: LogMelSpectrogram
    public let model: E2E
    public let pitchDecoder: PitchDecoder

    public init(configuration: RMVPEConfiguration, weights: SafeTensorsFile) throws {
        try configuration.validate()
        self.configuration = configuration
        melSpectrogram = LogMelSpectrogram(configuration.mel)
        model = try E2E(architecture: configuration.architecture, weights: weights)
        pitchDecoder = PitchDecoder(configuration.decode)
    }

    /// Reads `<directory>/<name>.manifest.json`, checks the weights file it names against it (tensor list,
    /// shapes, dtypes, XXH64 checksums), and builds the model.
    public static func load(assetsDirectory directory: String, modelName name: String) throws -> RMVPE {
        let (manifest, weights) = try loadVerifiedExport(directory: directory, name: name,
                                                         readManifest: RMVPEManifest.load(path:), common: \.common)
        return try RMVPE(configuration: manifest.configuration, weights: weights)
    }

    /// The manifest's default frame padding.
    public var defaultPadMode: FramePadMode { FramePadMode(rawValue: configuration.framePadMode) ?? .reflect }

    /// (B, T, 128) -> (B, T', 128), T' the next multiple of `frame_multiple`, padded at the end as
    /// `mel2hidden`'s `F.pad(mel, (0, n_pad), mode)` does: reflect mirrors the frames before the last
    /// (without repeating it), constant appends zeros.
    public func padFrames(_ mel: Tensor, mode: FramePadMode) throws -> Tensor {
        precondition(mel.rank == 3)
        let frames = mel.frameCount
        let multiple = configuration.frameMultiple
        let padding = (multiple - frames % multiple) % multiple
        guard padding > 0 else { return mel }
        switch mode {
        case .constant:
            return Tensor.concatenatingFrames([mel, Tensor(zeros: [mel.batchCount, padding, mel.channelCount])])
        case .reflect:
            // torch's reflect padding needs more frames than it adds; upstream fails here too.
            guard padding < frames else {
                throw RMVPEError.framesTooFewToReflect(
                    frames: frames, padded: frames + padding,
                    minimumSamples: (multiple / 2) * configuration.mel.hopLength)
            }
            let mirrored = (0..<padding).map { mel.frames((frames - 2 - $0)..<(frames - 1 - $0)) }
            return Tensor.concatenatingFrames([mel] + mirrored)
        }
    }

    /// Upstream `mel2hidden`: (B, T, 128) log-mel -> (B, T, 360) salience.
    public func mel2hidden(_ mel: Tensor, padMode: FramePadMode) throws -> Tensor {
        let salience = model(try padFrames(mel, mode: padMode))
        return salience.frames(0..<mel.frameCount)
    }

    /// Upstream `infer_from_audio`: (B, N) audio -> (B, 1 + N / hop) f0 in Hz, 0 = unvoiced.
    public func f0(audio: Tensor, padMode: FramePadMode? = nil) throws -> Tensor {
        pitchDecoder.f0(try mel2hidden(try melSpectrogram(audio), padMode: padMode ?? defaultPadMode))
    }
}
