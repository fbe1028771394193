import Foundation

/// `modules.WN`: the gated, dilated WaveNet inside each coupling layer, conditioned on the speaker.
///
/// Upstream has ONE `cond_layer` producing conditioning for all layers at once; layer `i` reads channels
/// `i * 2H ..< (i + 1) * 2H` of it. The last `res_skip_layer` outputs only the skip half (H channels).
struct WaveNet: Sendable {
    let hiddenChannels: Int
    let inLayers: [Conv1d]
    let resSkipLayers: [Conv1d]
    let condLayer: Conv1d

    init(loading prefix: String, from weights: inout WeightStore, hiddenChannels: Int, kernelSize: Int,
         dilationRate: Int, layers: Int, ginChannels: Int) throws {
        self.hiddenChannels = hiddenChannels
        condLayer = try Conv1d(loading: "\(prefix).cond_layer", from: &weights, inputChannels: ginChannels,
                               outputChannels: 2 * hiddenChannels * layers)
        var dilation = 1
        var inLayers: [Conv1d] = []
        var resSkipLayers: [Conv1d] = []
        for i in 0..<layers {
            inLayers.append(try Conv1d(
                loading: "\(prefix).in_layer_\(i)", from: &weights, inputChannels: hiddenChannels,
                outputChannels: 2 * hiddenChannels,
                geometry: ConvolutionGeometry(kernelSize: kernelSize, dilation: dilation,
                                              padding: (kernelSize * dilation - dilation) / 2)))
            resSkipLayers.append(try Conv1d(
                loading: "\(prefix).res_skip_layer_\(i)", from: &weights, inputChannels: hiddenChannels,
                outputChannels: i < layers - 1 ? 2 * hiddenChannels : hiddenChannels))
            dilation *= dilationRate
        }
        self.inLayers = inLayers
        self.resSkipLayers = resSkipLayers
    }

    /// x (B, T, H), mask (B, T, 1), g (B, 1, gin) -> (B, T, H)
    func callAsFunction(_ input: Tensor, mask: Tensor, g: Tensor) -> Tensor {
        let (batches, frames, h) = (input.batchCount, input.frameCount, hiddenChannels)
        let condition = condLayer(g)
        let conditionWidth = condition.channelCount
        var x = input
        var output = Tensor(zeros: input.shape)
        var acts = Tensor(zeros: input.shape)
        for (i, (inLayer, resSkipLayer)) in zip(inLayers, resSkipLayers).enumerated() {
            let xIn = inLayer(x)
            // commons.fused_add_tanh_sigmoid_multiply(x_in, g_l): tanh(first half) * sigmoid(second half).
            xIn.data.withUnsafeBufferPointer { xIn in
                condition.data.withUnsafeBufferPointer { condition in
                    acts.data.withUnsafeMutableBufferPointer { acts in
                        for b in 0..<batches {
                            let gl = condition.baseAddress! + b * conditionWidth + i * 2 * h
                            for t in 0..<frames {
                                let row = xIn.baseAddress! + (b * frames + t) * 2 * h
                                let target = acts.baseAddress! + (b * frames + t) * h
                                for c in 0..<h {
                                    let gate = row[h + c] + gl[h + c]
                                    target[c] = tanhf(row[c] + gl[c]) * (1 / (1 + expf(-gate)))
                                }
                            }
                        }
                    }
                }
            }
            let resSkip = resSkipLayer(acts)
            let isLast = i == inLayers.count - 1
            let width = resSkip.channelCount
            resSkip.data.withUnsafeBufferPointer { resSkip in
                mask.data.withUnsafeBufferPointer { mask in
                    x.data.withUnsafeMutableBufferPointer { x in
                        output.data.withUnsafeMutableBufferPointer { output in
                            for row in 0..<(batches * frames) {
                                let source = resSkip.baseAddress! + row * width
                                let line = x.baseAddress! + row * h
                                let skip = output.baseAddress! + row * h
                                if isLast {
                                    for c in 0..<h { skip[c] += source[c] }
                                } else {
                                    for c in 0..<h {
                                        line[c] = (line[c] + source[c]) * mask[row]
                                        skip[c] += source[h + c]
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        output.multiplyFrames(by: mask)
        return output
    }
}

/// `modules.ResidualCouplingLayer(mean_only=True)`: shifts the second half of the channels by a function
/// of the first half.
struct ResidualCouplingLayer: Sendable {
    let halfChannels: Int
    let pre: Conv1d
    let encoder: WaveNet
    let post: Conv1d

    init(loading prefix: String, from weights: inout WeightStore, configuration c: Configuration) throws {
        halfChannels = c.interChannels / 2
        pre = try Conv1d(loading: "\(prefix).pre", from: &weights, inputChannels: halfChannels, outputChannels: c.hiddenChannels)
        encoder = try WaveNet(loading: "\(prefix).enc", from: &weights, hiddenChannels: c.hiddenChannels,
                              kernelSize: Configuration.flowKernelSize, dilationRate: Configuration.flowDilationRate,
                              layers: Configuration.flowWaveNetLayers, ginChannels: c.ginChannels)
        post = try Conv1d(loading: "\(prefix).post", from: &weights, inputChannels: c.hiddenChannels, outputChannels: halfChannels)
    }

    /// The inverse coupling: x1 <- (x1 - m(x0)) * mask; x0 passes through.
    func reverse(_ x: Tensor, mask: Tensor, g: Tensor) -> Tensor {
        var h = pre(x.channels(0..<halfChannels))
        h.multiplyFrames(by: mask)
        h = encoder(h, mask: mask, g: g)
        var mean = post(h)
        mean.multiplyFrames(by: mask)
        var result = x
        let width = 2 * halfChannels
        result.data.withUnsafeMutableBufferPointer { result in
            mean.data.withUnsafeBufferPointer { mean in
                mask.data.withUnsafeBufferPointer { mask in
                    for row in 0..<mask.count {
                        let line = result.baseAddress! + row * width + halfChannels
                        let shift = mean.baseAddress! + row * halfChannels
                        // mean_only: logs = 0, so exp(-logs) = 1 exactly.
                        for c in 0..<halfChannels { line[c] = (line[c] - shift[c]) * mask[row] }
                    }
                }
            }
        }
        return result
    }
}

/// Upstream's `ResidualCouplingBlock` (`flow`) run in reverse, as at inference.
///
/// Upstream's list is [coupling 0, Flip, coupling 1, Flip, ...]; reversed, every coupling layer (ours
/// `flow_3` down to `flow_0`) runs right after a channel flip.
public struct Flow: Sendable {
    let couplings: [ResidualCouplingLayer]

    init(loading weights: inout WeightStore, configuration: Configuration) throws {
        couplings = try (0..<Configuration.flowCount).map {
            try ResidualCouplingLayer(loading: "flow.flow_\($0)", from: &weights, configuration: configuration)
        }
    }

    public var couplingCount: Int { couplings.count }

    /// One reverse step: flip the channels, then undo coupling layer `index`.
    public func reverseStep(_ index: Int, _ x: Tensor, mask: Tensor, g: Tensor) -> Tensor {
        couplings[index].reverse(Self.flipChannels(x), mask: mask, g: g)
    }

    /// z_p -> z, reporting each coupling layer's output (`flow.flow_3` first).
    public func reverse(_ x: Tensor, mask: Tensor, g: Tensor, observe: (Int, Tensor) -> Void = { _, _ in }) -> Tensor {
        var x = x
        for index in couplings.indices.reversed() {
            x = reverseStep(index, x, mask: mask, g: g)
            observe(index, x)
        }
        return x
    }

    /// `modules.Flip`: torch.flip over the channel axis.
    static func flipChannels(_ x: Tensor) -> Tensor {
        var result = x
        let width = x.channelCount
        result.data.withUnsafeMutableBufferPointer { values in
            for row in 0..<(x.count / max(width, 1)) {
                var line = UnsafeMutableBufferPointer(rebasing: values[(row * width)..<((row + 1) * width)])
                line.reverse()
            }
        }
        return result
    }
}
