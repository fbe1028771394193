import Foundation

/// The content-encoder tensor names of `rvc_ios_tools/hubert/stages.py` and their layouts: upstream's (as
/// golden sets store them: the front end channels-first) and this package's channels-last one.
public enum ContentEncoderTensors {
    /// Upstream's layout of `name`, or nil for a name the content encoder does not produce.
    public static func goldenLayout(of name: String) -> String? {
        if name == "audio" { return "BT" }
        if let index = number(after: "conv_", in: name), index >= 0 { return "BCT" }
        if ["features", "projected", "pos_conv", "v1", "v2"].contains(name) { return "BTC" }
        if number(after: "layer_", in: name) != nil { return "BTC" }
        return nil
    }

    /// The layout this package computes `name` in: channels last.
    public static func nativeLayout(of name: String) -> String? {
        guard let layout = goldenLayout(of: name) else { return nil }
        return layout == "BCT" ? "BTC" : layout
    }

    public static func conv(_ i: Int) -> String { "conv_\(i)" }
    public static func layer(_ n: Int) -> String { "layer_\(n)" }

    private static func number(after prefix: String, in name: String) -> Int? {
        name.hasPrefix(prefix) ? Int(name.dropFirst(prefix.count)) : nil
    }
}

/// Runs the content encoder stage by stage, in the order and with the names of `hubert_stage_table`:
/// audio -> conv_0 .. conv_6 -> features -> projected -> pos_conv -> layer_0 .. layer_12 -> v1, v2,
/// handing every output to `record` channels-last.
///
/// Every stage reads its inputs through `StageInputs`: chained, what earlier stages computed here;
/// teacher-forced, the golden set's tensor of that name (conv_1 from the golden conv_0, layer 5 from the
/// golden layer_4, v1 from the golden layer 9, ...).
public struct ContentEncoderStageRunner {
    public let encoder: ContentEncoder

    public init(encoder: ContentEncoder) {
        self.encoder = encoder
    }

    /// `audio` (B, N); `v1Layer`: the layer v1 is final_proj of (the golden set's; nil: no v1 stage).
    public func run(audio: Tensor, v1Layer: Int?, mode: StageRunner.Mode, golden: GoldenSet? = nil,
                    record: (String, Tensor) throws -> Void) throws {
        var inputs = StageInputs(mode: mode, golden: golden, nativeLayout: ContentEncoderTensors.nativeLayout(of:))
        func publish(_ name: String, _ tensor: Tensor) throws {
            inputs.keep(name, tensor)
            try record(name, tensor)
        }
        let a = encoder.configuration.architecture
        var previous = "audio"
        inputs.keep("audio", audio)
        let frames = try encoder.audioFrames(audio)
        for i in 0..<a.convLayers.count {
            let x = i == 0 ? frames : try inputs.tensor(previous)
            previous = ContentEncoderTensors.conv(i)
            try publish(previous, encoder.frontEndLayer(i, x))
        }
        try publish("features", encoder.featureNormalized(try inputs.tensor(previous)))
        try publish("projected", encoder.projected(try inputs.tensor("features")))
        try publish("pos_conv", encoder.positional(try inputs.tensor("projected")))
        try publish(ContentEncoderTensors.layer(0),
                    encoder.encoderInput(projected: try inputs.tensor("projected"), positional: try inputs.tensor("pos_conv")))
        for n in 0..<a.numLayers {
            try publish(ContentEncoderTensors.layer(n + 1), encoder.layer(n, try inputs.tensor(ContentEncoderTensors.layer(n))))
        }
        if let v1Layer {
            try publish("v1", try encoder.projectedFinal(try inputs.tensor(ContentEncoderTensors.layer(v1Layer))))
        }
        try record("v2", try inputs.tensor(ContentEncoderTensors.layer(a.numLayers)))
    }
}
