/// RMVPE's U-Net (upstream `DeepUnet`: `Encoder`, `Intermediate`, `Decoder`) on channels-last images
/// `(B, T, F, C)`, T = frames (a multiple of 2^levels), F = 128 mel bins.

/// Input BatchNorm, then `en_de_layers` blocks that double the channels and halve time and mel bins.
public struct RMVPEEncoder: Sendable {
    let bn: BatchNorm
    let layers: [ResEncoderBlock]

    init(loading weights: inout WeightStore, architecture a: RMVPEConfiguration.Architecture) throws {
        bn = try BatchNorm(loading: "unet.encoder.bn", from: &weights, channels: a.inChannels, epsilon: a.batchNormEps)
        var (inChannels, outChannels) = (a.inChannels, a.enOutChannels)
        var layers: [ResEncoderBlock] = []
        for layer in 0..<a.enDeLayers {
            layers.append(try ResEncoderBlock(
                loading: "unet.encoder.layer_\(layer)", from: &weights, inputChannels: inChannels,
                outputChannels: outChannels, blockCount: a.nBlocks,
                poolKernel: (a.kernelSize[0], a.kernelSize[1]), epsilon: a.batchNormEps))
            (inChannels, outChannels) = (outChannels, outChannels * 2)
        }
        self.layers = layers
    }

    /// The last pooled tensor and each level's pre-pool output (the skips), first level first.
    public func callAsFunction(_ x: Tensor) -> (output: Tensor, skips: [Tensor]) {
        var x = x
        bn.apply(to: &x)
        var skips: [Tensor] = []
        for layer in layers {
            let (skip, pooled) = layer(x)
            skips.append(skip)
            x = pooled ?? skip
        }
        return (x, skips)
    }
}

/// `inter_layers` non-pooling blocks at the bottom of the U-Net; the first doubles the channels.
public struct RMVPEIntermediate: Sendable {
    let layers: [ResEncoderBlock]

    init(loading weights: inout WeightStore, architecture a: RMVPEConfiguration.Architecture) throws {
        let channels = a.bottleneckChannels
        layers = try (0..<a.interLayers).map { layer in
            try ResEncoderBlock(loading: "unet.intermediate.layer_\(layer)", from: &weights,
                                inputChannels: layer == 0 ? channels / 2 : channels, outputChannels: channels,
                                blockCount: a.nBlocks, poolKernel: nil, epsilon: a.batchNormEps)
        }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        layers.reduce(x) { $1($0).output }
    }
}

/// `en_de_layers` blocks that halve the channels and double time and mel bins, each joined with the
/// encoder's skip of the same size (the last skip first).
public struct RMVPEDecoder: Sendable {
    let layers: [ResDecoderBlock]

    init(loading weights: inout WeightStore, architecture a: RMVPEConfiguration.Architecture) throws {
        var inChannels = a.bottleneckChannels
        var layers: [ResDecoderBlock] = []
        for layer in 0..<a.enDeLayers {
            layers.append(try ResDecoderBlock(
                loading: "unet.decoder.layer_\(layer)", from: &weights, inputChannels: inChannels,
                outputChannels: inChannels / 2, stride: a.kernelSize[0], blockCount: a.nBlocks, epsilon: a.batchNormEps))
            inChannels /= 2
        }
        self.layers = layers
    }

    public var levelCount: Int { layers.count }

    /// Takes the skips to drop each as soon as its level is done with it (the top level's is the largest
    /// image of the U-Net).
    public func callAsFunction(_ x: Tensor, skips: consuming [Tensor]) -> Tensor {
        precondition(skips.count == layers.count, "decoder needs \(layers.count) skips, got \(skips.count)")
        var x = x
        for layer in layers {
            x = layer(consume x, skip: skips.removeLast())
        }
        return x
    }
}

public struct DeepUnet: Sendable {
    public let encoder: RMVPEEncoder
    public let intermediate: RMVPEIntermediate
    public let decoder: RMVPEDecoder

    init(loading weights: inout WeightStore, architecture: RMVPEConfiguration.Architecture) throws {
        encoder = try RMVPEEncoder(loading: &weights, architecture: architecture)
        intermediate = try RMVPEIntermediate(loading: &weights, architecture: architecture)
        decoder = try RMVPEDecoder(loading: &weights, architecture: architecture)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let (encoded, skips) = encoder(x)
        return decoder(intermediate(encoded), skips: consume skips)
    }
}
