/// The decoder (`dec`): upstream's `GeneratorNSF` (f0 voices) or plain HiFi-GAN `Generator` (no-f0 voices).
///
/// Split into the stages a golden set records so each can be run alone: `preStage` (conv_pre + cond(g)),
/// `upStage(i)` (leaky ReLU, transposed conv, + noise_conv(source), averaged ResBlocks) and `postStage`
/// (leaky ReLU 0.01, conv_post, tanh).
public struct Generator: Sendable {
    let convPre: Conv1d
    let cond: Conv1d
    let ups: [ConvTransposed1d]
    /// Present for f0 voices: noise_convs[i] maps the harmonic source to stage i's rate and channels.
    let noiseConvs: [Conv1d]?
    let resblocks: [[ResBlock]]
    let convPost: Conv1d
    public let source: SineSource?
    public let upsampleRates: [Int]

    /// Upstream's `modules.LRELU_SLOPE` before each upsampling; `F.leaky_relu`'s default before conv_post.
    static let upsampleSlope: Float = 0.1
    static let postSlope: Float = 0.01

    init(loading weights: inout WeightStore, configuration c: Configuration) throws {
        convPre = try Conv1d(loading: "dec.conv_pre", from: &weights, inputChannels: c.interChannels,
                             outputChannels: c.upsampleInitialChannel, geometry: ConvolutionGeometry(kernelSize: 7, padding: 3))
        cond = try Conv1d(loading: "dec.cond", from: &weights, inputChannels: c.ginChannels,
                          outputChannels: c.upsampleInitialChannel)
        var ups: [ConvTransposed1d] = []
        var noiseConvs: [Conv1d] = []
        var resblocks: [[ResBlock]] = []
        for (i, (rate, kernel)) in zip(c.upsampleRates, c.upsampleKernelSizes).enumerated() {
            let channels = c.decoderChannels(afterStage: i)
            ups.append(try ConvTransposed1d(loading: "dec.up_\(i)", from: &weights, inputChannels: 2 * channels,
                                            outputChannels: channels, kernelSize: kernel, stride: rate,
                                            padding: (kernel - rate) / 2))
            if c.f0 {
                // The source is at the output rate; stage i is upp / stride_f0 samples per frame.
                let strideF0 = c.upsampleRates[(i + 1)...].reduce(1, *)
                let geometry = i + 1 < c.upsampleRates.count
                    ? ConvolutionGeometry(kernelSize: 2 * strideF0, stride: strideF0, padding: strideF0 / 2)
                    : ConvolutionGeometry(kernelSize: 1)
                noiseConvs.append(try Conv1d(loading: "dec.noise_conv_\(i)", from: &weights, inputChannels: 1,
                                             outputChannels: channels, geometry: geometry))
            }
            resblocks.append(try zip(c.resblockKernelSizes, c.resblockDilationSizes).enumerated().map { j, block in
                try ResBlock(loading: "dec.resblock_\(i * c.resblockKernelSizes.count + j)", from: &weights,
                             kind: c.resblock, channels: channels, kernelSize: block.0, dilations: block.1)
            })
        }
        self.ups = ups
        self.noiseConvs = c.f0 ? noiseConvs : nil
        self.resblocks = resblocks
        convPost = try Conv1d(loading: "dec.conv_post", from: &weights,
                              inputChannels: c.decoderChannels(afterStage: c.upsampleRates.count - 1), outputChannels: 1,
                              geometry: ConvolutionGeometry(kernelSize: 7, padding: 3), hasBias: false)
        source = c.f0 ? try SineSource(loading: &weights, sampleRate: c.sampleRate, upsampleFactor: c.upsampleFactor) : nil
        upsampleRates = c.upsampleRates
    }

    public var stageCount: Int { ups.count }

    /// conv_pre(z) + cond(g): z (B, T, inter), g (B, 1, gin) -> (B, T, upsample_initial_channel).
    public func preStage(_ z: Tensor, g: Tensor) -> Tensor {
        var x = convPre(z)
        x.addToEveryFrame(cond(g))
        return x
    }

    /// Upsampling stage `index`: x (B, T_i, C_i) and the harmonic source (B, T * upp, 1) for f0 voices.
    public func upStage(_ index: Int, _ input: Tensor, source: Tensor?) throws -> Tensor {
        var x = ups[index](input, inputSlope: Self.upsampleSlope)
        if let noiseConvs {
            guard let source else { throw RVCError.goldenTensorMissing(name: "dec.source") }
            let expected = noiseConvs[index].outputFrames(inputFrames: source.frameCount)
            guard source.rank == 3, source.channelCount == 1, expected == x.frameCount else {
                throw RVCError.goldenTensorShape(name: "dec.source", expected: [x.batchCount, x.frameCount * (upsampleRates[(index + 1)...].reduce(1, *)), 1],
                                                 actual: source.shape)
            }
            noiseConvs[index].accumulate(source, into: &x)
        }
        Self.averageResBlocks(resblocks[index], &x)
        return x
    }

    /// leaky_relu(x, 0.01) -> conv_post -> tanh: (B, T * upp, C) -> audio (B, T * upp, 1).
    public func postStage(_ x: Tensor) -> Tensor {
        var audio = convPost(x, inputSlope: Self.postSlope)
        audio.applyTanh()
        return audio
    }

    /// x <- (sum of the stage's ResBlocks applied to x) / count, holding at most four buffers of x's size:
    /// the first block runs in the sum itself and the last in x, which is not needed after it.
    static func averageResBlocks(_ blocks: [ResBlock], _ x: inout Tensor) {
        var scratch = Tensor(zeros: x.shape)
        var sum = x
        blocks[0].apply(to: &sum, scratch: &scratch)
        if blocks.count > 1 {
            for block in blocks[1..<(blocks.count - 1)] {
                var branch = x
                block.apply(to: &branch, scratch: &scratch)
                sum.add(branch)
            }
            blocks[blocks.count - 1].apply(to: &x, scratch: &scratch)
            sum.add(x)
        }
        let count = Float(blocks.count)
        sum.updateEach { $0 / count }
        x = sum
    }
}
