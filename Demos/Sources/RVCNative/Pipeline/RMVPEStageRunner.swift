import Foundation

/// The RMVPE tensor names of docs/formats.md (`rmvpe_inference.rmvpe_stage_table`) and their layouts:
/// upstream's (as golden sets store them) and this package's channels-last one.
public enum RMVPETensors {
    static let fixedGoldenLayouts: [String: String] = [
        "audio": "BT", "mel": "BCT", "padded_mel": "BCT",
        "unet.encoder": "BCTF", "unet.intermediate": "BCTF", "unet.decoder": "BCTF", "cnn": "BCTF",
        "fc.gru": "BTC", "salience": "BTC", "f0": "BT",
    ]
    static let skipPrefix = "unet.encoder.skip_"

    public static func skip(_ level: Int) -> String { "\(skipPrefix)\(level)" }

    /// Upstream's layout of `name`, or nil for a name the RMVPE pipeline does not know.
    public static func goldenLayout(of name: String) -> String? {
        if let layout = fixedGoldenLayouts[name] { return layout }
        if name.hasPrefix(skipPrefix), Int(name.dropFirst(skipPrefix.count)) != nil { return "BCTF" }
        return nil
    }

    /// The layout this package computes `name` in: channels last (`BCT` -> `BTC`, `BCTF` -> `BTFC`).
    public static func nativeLayout(of name: String) -> String? {
        guard let layout = goldenLayout(of: name) else { return nil }
        switch layout {
        case "BCT": return "BTC"
        case "BCTF": return "BTFC"
        default: return layout
        }
    }
}

/// Runs RMVPE stage by stage, in the order and with the names of `rmvpe_stage_table`:
/// audio -> mel -> padded_mel -> encoder (+ skips) -> intermediate -> decoder -> cnn -> gru -> salience -> f0,
/// handing every output to `record` in its native layout (`RMVPETensors.nativeLayout`).
///
/// Every stage reads its inputs through `StageInputs`: chained, what earlier stages computed here;
/// teacher-forced, the golden set's tensor of that name (the mel from the golden audio, the encoder from the
/// golden padded_mel, ..., the f0 from the golden salience).
public struct RMVPEStageRunner {
    public let rmvpe: RMVPE

    public init(rmvpe: RMVPE) {
        self.rmvpe = rmvpe
    }

    /// `audio` (B, N); teacher-forced runs need `golden`.
    public func run(audio: Tensor, padMode: FramePadMode, mode: StageRunner.Mode, golden: GoldenSet? = nil,
                    record: (String, Tensor) throws -> Void) throws {
        var inputs = StageInputs(mode: mode, golden: golden, nativeLayout: RMVPETensors.nativeLayout(of:))
        func publish(_ name: String, _ tensor: Tensor) throws {
            inputs.keep(name, tensor)
            try record(name, tensor)
        }
        func input(_ name: String) throws -> Tensor {
            try inputs.tensor(name)
        }
        let model = rmvpe.model
        // `mel2hidden` crops the salience back to the audio's frame count.
        let frames = rmvpe.melSpectrogram.frameCount(samples: audio.shape[1])

        try publish("mel", try rmvpe.melSpectrogram(audio))
        try publish("padded_mel", try rmvpe.padFrames(try input("mel"), mode: padMode))

        let (encoded, skips) = model.unet.encoder(E2E.melImage(try input("padded_mel")))
        try publish("unet.encoder", encoded)
        for (level, skip) in skips.enumerated() { try publish(RMVPETensors.skip(level), skip) }

        try publish("unet.intermediate", model.unet.intermediate(try input("unet.encoder")))
        let skipInputs = try (0..<model.unet.decoder.levelCount).map { try input(RMVPETensors.skip($0)) }
        try publish("unet.decoder", model.unet.decoder(try input("unet.intermediate"), skips: skipInputs))
        try publish("cnn", model.cnnStage(try input("unet.decoder")))
        try publish("fc.gru", model.gruStage(try input("cnn")))
        try publish("salience", model.salienceStage(try input("fc.gru")).frames(0..<frames))
        try publish("f0", rmvpe.pitchDecoder.f0(try input("salience")))
    }
}
