/// Upstream's `TextEncoder256` / `TextEncoder768` (`enc_p`): phone features (+ coarse pitch) through a
/// relative-position transformer to the prior's mean and log-scale.
public struct TextEncoder: Sendable {
    struct Layer: Sendable {
        let attention: MultiHeadAttention
        let norm1: LayerNorm
        let ffn: FFN
        let norm2: LayerNorm
    }

    public struct Output: Sendable {
        /// `enc_p.hidden`: the encoder output, masked, before `proj` (B, T, hidden).
        public var hidden: Tensor
        public var mean: Tensor
        public var logScale: Tensor
        /// (B, T, 1): 1 for frames inside `phone_lengths`.
        public var mask: Tensor
    }

    let embedPhone: Linear
    let embedPitch: Embedding?
    let layers: [Layer]
    let projection: Conv1d
    let hiddenChannels: Int
    let outputChannels: Int

    init(loading weights: inout WeightStore, configuration c: Configuration) throws {
        embedPhone = try Linear(loading: "enc_p.emb_phone", from: &weights, inputFeatures: c.featureDim,
                                outputFeatures: c.hiddenChannels)
        embedPitch = c.f0
            ? try Embedding(loading: "enc_p.emb_pitch", from: &weights, count: Configuration.pitchBins, dimensions: c.hiddenChannels)
            : nil
        layers = try (0..<c.nLayers).map { n in
            let prefix = "enc_p.encoder"
            return Layer(
                attention: try MultiHeadAttention(loading: "\(prefix).attn_\(n)", from: &weights, channels: c.hiddenChannels,
                                                  heads: c.nHeads, window: Configuration.attentionWindow),
                norm1: try LayerNorm(loading: "\(prefix).norm1_\(n)", from: &weights, channels: c.hiddenChannels),
                ffn: try FFN(loading: "\(prefix).ffn_\(n)", from: &weights, channels: c.hiddenChannels,
                             filterChannels: c.filterChannels, kernelSize: c.kernelSize),
                norm2: try LayerNorm(loading: "\(prefix).norm2_\(n)", from: &weights, channels: c.hiddenChannels))
        }
        projection = try Conv1d(loading: "enc_p.proj", from: &weights, inputChannels: c.hiddenChannels,
                                outputChannels: 2 * c.interChannels)
        hiddenChannels = c.hiddenChannels
        outputChannels = c.interChannels
    }

    /// phone (B, T, feature_dim); pitch (B * T coarse bins 0..<256) for f0 voices; lengths (B).
    public func callAsFunction(phone: Tensor, pitch: [Int32]?, lengths: [Int32]) throws -> Output {
        let (batches, frames) = (phone.batchCount, phone.frameCount)
        let mask = try Self.sequenceMask(lengths: lengths, frames: frames)
        var x = embedPhone(phone)
        if let embedPitch {
            guard let pitch else { throw RVCError.goldenTensorMissing(name: "pitch") }
            x.add(try embedPitch(pitch, shape: [batches, frames], inputName: "pitch"))
        }
        x.scale(by: Float(Double(hiddenChannels).squareRoot()))
        x.applyLeakyReLU(slope: 0.1)
        x.multiplyFrames(by: mask)

        // attentions.Encoder: post-norm residual blocks.
        for layer in layers {
            x.add(layer.attention(x, mask: mask))
            x = layer.norm1(x)
            x.add(layer.ffn(x, mask: mask))
            x = layer.norm2(x)
        }
        x.multiplyFrames(by: mask)

        var stats = projection(x)
        stats.multiplyFrames(by: mask)
        return Output(hidden: x, mean: stats.channels(0..<outputChannels),
                      logScale: stats.channels(outputChannels..<(2 * outputChannels)), mask: mask)
    }

    /// `commons.sequence_mask` as (B, T, 1) floats.
    static func sequenceMask(lengths: [Int32], frames: Int) throws -> Tensor {
        var mask = Tensor(zeros: [lengths.count, frames, 1])
        for (b, length) in lengths.enumerated() {
            guard length >= 0, Int(length) <= frames else {
                throw RVCError.inputInvalid(name: "phone_lengths", reason: "length \(length) is outside 0...\(frames) frames")
            }
            for t in 0..<Int(length) { mask.data[b * frames + t] = 1 }
        }
        return mask
    }
}
