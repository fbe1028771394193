import Foundation

/// The manifest's `rmvpe` block (`rvc_ios_tools/rmvpe_convert.py`, `rmvpe_inference.pipeline_config`): the
/// network's sizes and every constant of the audio -> log-mel -> salience -> f0 pipeline.
public struct RMVPEConfiguration: Decodable, Equatable, Sendable {
    /// Upstream `E2E(n_blocks, n_gru, kernel_size, en_de_layers, inter_layers, in_channels, en_out_channels)`
    /// plus the BiGRU's width (256 in rmvpe.pt; smaller only in test fixtures).
    public struct Architecture: Decodable, Equatable, Sendable {
        public let nBlocks: Int
        public let nGru: Int
        public let kernelSize: [Int]
        public let enDeLayers: Int
        public let interLayers: Int
        public let inChannels: Int
        public let enOutChannels: Int
        public let gruHiddenSize: Int
        public let nMels: Int
        public let nClass: Int
        public let batchNormEps: Double

        /// Channels after the encoder's last block, doubled once more: upstream's `Encoder.out_channel`
        /// (512 for rmvpe.pt), which the intermediate layers produce and the decoder starts from.
        public var bottleneckChannels: Int { enOutChannels << enDeLayers }
    }

    /// Upstream `MelSpectrogram(is_half, 128, 16000, 1024, 160, None, 30, 8000)` with `center=True`.
    public struct Mel: Decodable, Equatable, Sendable {
        public let sampleRate: Int
        public let nFft: Int
        public let winLength: Int
        public let hopLength: Int
        public let window: String
        public let center: Bool
        public let centerPadMode: String
        public let spectrum: String
        public let nMels: Int
        public let fmin: Double
        public let fmax: Double
        public let melScale: String
        public let melNorm: String
        public let logClamp: Double
    }

    /// Upstream `RMVPE.decode` / `to_local_average_cents`.
    public struct Decode: Decodable, Equatable, Sendable {
        public let threshold: Double
        public let unvoicedWhen: String
        public let centsPerBin: Double
        public let centsOffset: Double
        public let localAverageBins: Int
        public let f0ReferenceHz: Double
    }

    public let architecture: Architecture
    public let mel: Mel
    /// `mel2hidden` pads the frames to a multiple of this (32).
    public let frameMultiple: Int
    /// The padding the manifest's tool used by default (`reflect`, as RVC WebUI and Applio).
    public let framePadMode: String
    public let decode: Decode

    /// The largest STFT this build computes (upstream's is 1024).
    public static let maximumFFTSize = 8192

    /// Everything this port computes one way only, checked once so the model code can rely on it.
    public func validate() throws {
        func require(_ ok: Bool, _ field: String, _ value: Any, _ supported: String) throws {
            if !ok { throw RMVPEError.unsupportedConfiguration(field: field, value: "\(value)", supported: supported) }
        }
        let a = architecture
        try require(a.nGru == 1, "architecture.n_gru", a.nGru, "1 (one bidirectional GRU layer)")
        try require(a.kernelSize == [2, 2], "architecture.kernel_size", a.kernelSize, "[2, 2]")
        try require(a.inChannels == 1, "architecture.in_channels", a.inChannels, "1")
        try require(a.nMels == mel.nMels, "architecture.n_mels", a.nMels, "mel.n_mels (\(mel.nMels))")
        try require(a.nClass == 360, "architecture.n_class", a.nClass, "360")
        try require(a.batchNormEps > 0, "architecture.batch_norm_eps", a.batchNormEps, "a positive number")
        for (field, value) in [("n_blocks", a.nBlocks), ("inter_layers", a.interLayers), ("en_de_layers", a.enDeLayers),
                               ("en_out_channels", a.enOutChannels), ("gru_hidden_size", a.gruHiddenSize)] {
            try require(value >= 1, "architecture.\(field)", value, "a whole number >= 1")
        }
        // Each U-Net level halves time and mel bins: both must divide evenly all the way down.
        let levels = 1 << min(a.enDeLayers, 30)
        try require(frameMultiple % levels == 0 && a.nMels % levels == 0, "architecture.en_de_layers", a.enDeLayers,
                    "a depth whose 2^levels divides frame_multiple (\(frameMultiple)) and n_mels (\(a.nMels))")
        // The window, the FFT's tables and the filterbank are sized by n_fft and n_mels, which no weight
        // bounds: both are capped so a manifest cannot claim terabytes (upstream: 1024 and 128).
        try require(mel.nFft >= 4 && mel.nFft <= Self.maximumFFTSize && mel.nFft & (mel.nFft - 1) == 0, "mel.n_fft",
                    mel.nFft, "a power of two from 4 to \(Self.maximumFFTSize)")
        try require(mel.nMels >= 1 && mel.nMels <= mel.nFft / 2 + 1, "mel.n_mels", mel.nMels,
                    "a whole number from 1 to n_fft / 2 + 1 (\(mel.nFft / 2 + 1))")
        try require(mel.winLength == mel.nFft, "mel.win_length", mel.winLength, "n_fft (\(mel.nFft))")
        try require(mel.hopLength >= 1, "mel.hop_length", mel.hopLength, "a whole number >= 1")
        try require(mel.window == "hann_periodic", "mel.window", mel.window, "hann_periodic")
        try require(mel.center && mel.centerPadMode == "reflect", "mel.center_pad_mode", mel.centerPadMode,
                    "reflect, with center = true")
        try require(mel.spectrum == "magnitude", "mel.spectrum", mel.spectrum, "magnitude")
        try require(mel.melScale == "htk" && mel.melNorm == "slaney", "mel.mel_scale / mel.mel_norm",
                    "\(mel.melScale) / \(mel.melNorm)", "htk / slaney")
        try require(0 <= mel.fmin && mel.fmin < mel.fmax && mel.fmax <= Double(mel.sampleRate) / 2, "mel.fmin / mel.fmax",
                    "\(mel.fmin) / \(mel.fmax)", "0 <= fmin < fmax <= sample_rate / 2")
        try require(mel.logClamp > 0, "mel.log_clamp", mel.logClamp, "a positive number")
        try require(frameMultiple >= 1, "frame_multiple", frameMultiple, "a whole number >= 1")
        try require(FramePadMode(rawValue: framePadMode) != nil, "frame_pad_mode", framePadMode, "reflect or constant")
        try require(decode.unvoicedWhen == "max_salience <= threshold", "decode.unvoiced_when", decode.unvoicedWhen,
                    "max_salience <= threshold")
        try require(decode.localAverageBins >= 1 && decode.localAverageBins % 2 == 1, "decode.local_average_bins",
                    decode.localAverageBins, "an odd number")
    }
}

/// How `mel2hidden` pads the frames to a multiple of 32: RVC WebUI and Applio reflect, the `rvc` 0.3.5
/// package pads with zeros (`constant`; a loud 0 = log(1) in the log-mel domain).
public enum FramePadMode: String, Sendable, CaseIterable {
    case reflect
    case constant
}

/// `<Name>.manifest.json` of an RMVPE export (`rvc-ios export --rmvpe`): the tensor list every manifest has,
/// the `rmvpe` block and PyTorch's GRU gate order.
public struct RMVPEManifest: Sendable {
    /// The fields shared with voice manifests (format version, weights file, tensor list); `configuration`
    /// is nil there, since an RMVPE manifest has no voice `config`.
    public let common: VoiceManifest
    public let configuration: RMVPEConfiguration

    private struct KindProbe: Decodable { let kind: String }

    private struct Block: Decodable {
        let gruGateOrder: String
        let rmvpe: RMVPEConfiguration
    }

    /// Reads and checks an RMVPE manifest: the checks every manifest gets (`VoiceManifest.parseChecked`),
    /// its kind, PyTorch's gate order and the `rmvpe` block (`RMVPEConfiguration.validate`).
    public static func load(path: String) throws -> RMVPEManifest {
        try parse(try readFile(path), path: path)
    }

    /// `load` for bytes already read; `path` names them in errors.
    public static func parse(_ data: Data, path: String) throws -> RMVPEManifest {
        try VoiceManifest.parseChecked(data, path: path) { decoder in
            let kind = try decoder.decode(KindProbe.self, from: data).kind
            guard kind == "rmvpe" else { throw RMVPEError.manifestKind(path: path, found: kind) }
            let common = try decoder.decode(VoiceManifest.self, from: data)
            let block = try decoder.decode(Block.self, from: data)
            // PyTorch's row blocks (reset, update, new) are what `GRU` reads.
            guard block.gruGateOrder == "rzn" else {
                throw RMVPEError.unsupportedConfiguration(field: "gru_gate_order", value: block.gruGateOrder, supported: "rzn")
            }
            try block.rmvpe.validate()
            return (common, RMVPEManifest(common: common, configuration: block.rmvpe))
        }
    }
}
