import Foundation

/// The manifest's `hubert` block (`rvc_ios_tools/hubert/export.py`): the content encoder's sizes, as its
/// source's config (fairseq `cfg["model"]` or Hugging Face `config.json`) gives them, and the constants of
/// the audio -> features pipeline.
public struct ContentEncoderConfiguration: Decodable, Equatable, Sendable {
    /// fairseq `HubertModel` with `extractor_mode="default"`, `layer_norm_first=False` (HuBERT-base and
    /// ContentVec); 768 / 12 / 12 / 3072 / 128 / 16 for RVC's hubert_base.pt.
    public struct Architecture: Decodable, Equatable, Sendable {
        /// (channels, kernel, stride) of each front-end convolution.
        public let convLayers: [[Int]]
        public let hiddenSize: Int
        public let numLayers: Int
        public let numHeads: Int
        public let intermediateSize: Int
        public let convPos: Int
        public let convPosGroups: Int
        public let layerNormEps: Double
        /// nil when the file has no final_proj (v2 features only).
        public let finalProjDim: Int?
        /// The layer RVC's v1 features are final_proj of (9 of 12).
        public let v1Layer: Int

        public var headDimension: Int { hiddenSize / numHeads }
        public var positionalGroupWidth: Int { hiddenSize / convPosGroups }
    }

    public let architecture: Architecture
    public let sampleRate: Int
    /// Samples one frame hears (400) and samples between frames (320): frames = (N - 400) / 320 + 1.
    public let receptiveField: Int
    public let hopLength: Int

    /// Everything this port computes one way only, checked once so the model code can rely on it.
    public func validate() throws {
        func require(_ ok: Bool, _ field: String, _ value: Any, _ supported: String) throws {
            if !ok { throw ContentEncoderError.unsupportedConfiguration(field: field, value: "\(value)", supported: supported) }
        }
        let a = architecture
        try require(sampleRate == 16000, "sample_rate", sampleRate, "16000")
        try require(!a.convLayers.isEmpty && a.convLayers.allSatisfy { $0.count == 3 && $0.allSatisfy { $0 >= 1 } },
                    "architecture.conv_layers", a.convLayers, "a list of [channels, kernel, stride]")
        for (field, value) in [("hidden_size", a.hiddenSize), ("num_layers", a.numLayers), ("num_heads", a.numHeads),
                               ("intermediate_size", a.intermediateSize), ("conv_pos", a.convPos),
                               ("conv_pos_groups", a.convPosGroups), ("v1_layer", a.v1Layer)] {
            try require(value >= 1, "architecture.\(field)", value, "a whole number >= 1")
        }
        try require(a.hiddenSize % a.numHeads == 0, "architecture.num_heads", a.numHeads, "a divisor of hidden_size")
        try require(a.hiddenSize % a.convPosGroups == 0, "architecture.conv_pos_groups", a.convPosGroups,
                    "a divisor of hidden_size")
        try require(a.v1Layer <= a.numLayers, "architecture.v1_layer", a.v1Layer, "at most num_layers")
        try require(a.layerNormEps > 0 && a.layerNormEps < 1, "architecture.layer_norm_eps", a.layerNormEps,
                    "a small positive number")
        try require(a.finalProjDim.map { $0 >= 1 } ?? true, "architecture.final_proj_dim", a.finalProjDim as Any,
                    "null or a whole number >= 1")
        var field = 1, hop = 1
        for layer in a.convLayers {
            // A manifest's kernels and strides are any whole numbers, so the products are checked for overflow.
            let span = (layer[1] - 1).multipliedReportingOverflow(by: hop)
            let wider = field.addingReportingOverflow(span.partialValue)
            let longer = hop.multipliedReportingOverflow(by: layer[2])
            try require(!(span.overflow || wider.overflow || longer.overflow), "architecture.conv_layers", a.convLayers,
                        "kernels and strides whose receptive field fits 64 bits")
            (field, hop) = (wider.partialValue, longer.partialValue)
        }
        try require(field == receptiveField && hop == hopLength, "receptive_field / hop_length",
                    "\(receptiveField) / \(hopLength)", "\(field) / \(hop), what conv_layers give")
    }

    /// Frames the unpadded front end makes of `samples`: (N - 400) / 320 + 1 for HuBERT-base, 0 below 400.
    public func frameCount(samples: Int) -> Int {
        var length = samples
        for layer in architecture.convLayers {
            length = length >= layer[1] ? (length - layer[1]) / layer[2] + 1 : 0
        }
        return length
    }
}

/// `<Name>.manifest.json` of a content-encoder export (`rvc-ios export --hubert`): the tensor list every
/// manifest has and the `hubert` block.
public struct ContentEncoderManifest: Sendable {
    public let common: VoiceManifest
    public let configuration: ContentEncoderConfiguration

    private struct KindProbe: Decodable { let kind: String }
    private struct Block: Decodable { let hubert: ContentEncoderConfiguration }

    public static func load(path: String) throws -> ContentEncoderManifest {
        try parse(try readFile(path), path: path)
    }

    /// `load` for bytes already read; `path` names them in errors.
    public static func parse(_ data: Data, path: String) throws -> ContentEncoderManifest {
        try VoiceManifest.parseChecked(data, path: path) { decoder in
            let kind = try decoder.decode(KindProbe.self, from: data).kind
            guard kind == "hubert" else { throw ContentEncoderError.manifestKind(path: path, found: kind) }
            let common = try decoder.decode(VoiceManifest.self, from: data)
            let block = try decoder.decode(Block.self, from: data)
            return (common, ContentEncoderManifest(common: common, configuration: block.hubert))
        }
    }
}

/// What a content-encoder golden set records beyond `GoldenIndex`: its `extra` object
/// (`write_hubert_golden`): which layer its v1 features are final_proj of (nil: the model has no final_proj).
public struct ContentEncoderGoldenExtra: Decodable, Sendable {
    public let v1Layer: Int?
    public let v1Convention: String

    private struct Wrapper: Decodable { let extra: ContentEncoderGoldenExtra }

    public static func load(goldenFolder folder: String) throws -> ContentEncoderGoldenExtra {
        let path = URL(fileURLWithPath: folder).appendingPathComponent("index.json").path
        do {
            return try VoiceManifest.decoder().decode(Wrapper.self, from: try readFile(path)).extra
        } catch let error as DecodingError {
            throw RVCError.goldenIndexUnreadable(path: path, reason: describeDecodingError(error))
        }
    }
}

public enum ContentEncoderError: Error, Equatable, CustomStringConvertible {
    case manifestKind(path: String, found: String)
    case unsupportedConfiguration(field: String, value: String, supported: String)
    case audioTooShort(samples: Int, minimum: Int)
    case noFinalProj
    case goldenKind(path: String, found: String)

    public var description: String {
        switch self {
        case let .manifestKind(path, found):
            return "\(path) describes a `\(found)` model, not a content encoder. "
                + "Pass the manifest `rvc-ios export --hubert PATH` wrote."
        case let .unsupportedConfiguration(field, value, supported):
            return "The content encoder manifest's `\(field)` is \(value); this build supports \(supported). "
                + "Export the encoder again with the rvc-ios version matching this build."
        case let .audioTooShort(samples, minimum):
            return "The audio has \(samples) samples; the content encoder needs at least \(minimum) (16 kHz) for one "
                + "frame. Pass longer audio."
        case .noFinalProj:
            return "This content encoder has no final_proj, so it gives v2 (layer 12) features only; ask for v2."
        case let .goldenKind(path, found):
            return "\(path) is a `\(found)` golden set, not a content-encoder one. Pass a set written by "
                + "`rvc-ios golden generate --kind hubert`."
        }
    }
}
