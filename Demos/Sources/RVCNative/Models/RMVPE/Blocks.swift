/// RMVPE's U-Net blocks (upstream `rvc.lib.rmvpe`: `ConvBlockRes`, `ResEncoderBlock`, `ResDecoderBlock`) on
/// channels-last images `(B, T, F, C)`. Upstream's numbered `nn.Sequential` children are named as the
/// exported keys name them (`conv1`, `bn1`, ...; `rmvpe_convert.RMVPE_RULES`).

/// Two 3x3 conv + BatchNorm + ReLU, plus the input (through a 1x1 conv with bias, no BatchNorm, when the
/// channel count changes).
public struct ConvBlockRes: Sendable {
    let conv1: Conv2d
    let bn1: BatchNorm
    let conv2: Conv2d
    let bn2: BatchNorm
    let shortcut: Conv2d?

    init(loading prefix: String, from weights: inout WeightStore, inputChannels: Int, outputChannels: Int,
         epsilon: Double) throws {
        conv1 = try Conv2d(loading: "\(prefix).conv1", from: &weights, inputChannels: inputChannels,
                           outputChannels: outputChannels, kernelSize: 3, padding: 1, hasBias: false)
        bn1 = try BatchNorm(loading: "\(prefix).bn1", from: &weights, channels: outputChannels, epsilon: epsilon)
        conv2 = try Conv2d(loading: "\(prefix).conv2", from: &weights, inputChannels: outputChannels,
                           outputChannels: outputChannels, kernelSize: 3, padding: 1, hasBias: false)
        bn2 = try BatchNorm(loading: "\(prefix).bn2", from: &weights, channels: outputChannels, epsilon: epsilon)
        shortcut = inputChannels == outputChannels ? nil
            : try Conv2d(loading: "\(prefix).shortcut", from: &weights, inputChannels: inputChannels,
                         outputChannels: outputChannels, kernelSize: 1, padding: 0, hasBias: true)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var y = conv1(x)
        bn1.apply(to: &y, relu: true)
        y = conv2(y)
        bn2.apply(to: &y, relu: true)
        if let shortcut { shortcut.add(x, to: &y) } else { y.add(x) }
        return y
    }
}

/// `n_blocks` ConvBlockRes; in the encoder (with a pooling kernel) also the average-pooled result.
public struct ResEncoderBlock: Sendable {
    let blocks: [ConvBlockRes]
    /// Upstream's `kernel_size`: (2, 2) in the encoder, nil (no pooling) in the intermediate layers.
    let poolKernel: (height: Int, width: Int)?

    init(loading prefix: String, from weights: inout WeightStore, inputChannels: Int, outputChannels: Int,
         blockCount: Int, poolKernel: (height: Int, width: Int)?, epsilon: Double) throws {
        blocks = try (0..<blockCount).map { b in
            try ConvBlockRes(loading: "\(prefix).conv_\(b)", from: &weights,
                             inputChannels: b == 0 ? inputChannels : outputChannels, outputChannels: outputChannels,
                             epsilon: epsilon)
        }
        self.poolKernel = poolKernel
    }

    /// The blocks' output (the U-Net skip) and, with a pooling kernel, its pooled version.
    public func callAsFunction(_ x: Tensor) -> (output: Tensor, pooled: Tensor?) {
        let y = blocks.reduce(x) { $1($0) }
        return (y, poolKernel.map { y.averagePooled(kernelHeight: $0.height, kernelWidth: $0.width) })
    }
}

/// Transposed 3x3 conv (stride 2: doubles time and mel bins) + BatchNorm + ReLU, concatenation with the
/// skip (upsampled tensor first, as upstream's `torch.cat((x, concat_tensor), dim=1)`), then ConvBlockRes.
public struct ResDecoderBlock: Sendable {
    let conv1: ConvTransposed2d
    let bn1: BatchNorm
    let blocks: [ConvBlockRes]

    init(loading prefix: String, from weights: inout WeightStore, inputChannels: Int, outputChannels: Int,
         stride: Int, blockCount: Int, epsilon: Double) throws {
        // Upstream: ConvTranspose2d(3, stride, padding=(1, 1), output_padding=(1, 1) for stride (2, 2)), so
        // the output is exactly twice the input on both axes.
        conv1 = try ConvTransposed2d(loading: "\(prefix).conv1", from: &weights, inputChannels: inputChannels,
                                     outputChannels: outputChannels, kernelSize: 3, stride: stride, padding: 1,
                                     outputPadding: stride - 1)
        bn1 = try BatchNorm(loading: "\(prefix).bn1", from: &weights, channels: outputChannels, epsilon: epsilon)
        blocks = try (0..<blockCount).map { b in
            try ConvBlockRes(loading: "\(prefix).conv2_\(b)", from: &weights,
                             inputChannels: b == 0 ? 2 * outputChannels : outputChannels,
                             outputChannels: outputChannels, epsilon: epsilon)
        }
    }

    /// Takes `x` and `skip` to drop them as soon as they are used: at the top level of 60 s of audio the
    /// upsampled image and the skip are 50 MB each, their concatenation 100 MB.
    public func callAsFunction(_ x: consuming Tensor, skip: consuming Tensor) -> Tensor {
        var upsampled = conv1(x)
        _ = consume x
        bn1.apply(to: &upsampled, relu: true)
        precondition(Array(upsampled.shape.dropLast()) == Array(skip.shape.dropLast()),
                     "decoder upsampled \(upsampled.shape) vs skip \(skip.shape)")
        var y = Tensor.concatenatingChannels([consume upsampled, consume skip])
        for block in blocks { y = block(y) }
        return y
    }
}
