/// VITS's `attentions.FFN`: conv -> ReLU -> conv, each on masked input with "same" padding, output masked.
public struct FFN: Sendable {
    let conv1: Conv1d
    let conv2: Conv1d

    init(loading prefix: String, from weights: inout WeightStore, channels: Int, filterChannels: Int, kernelSize: Int) throws {
        // Upstream's `_same_padding`: (k - 1) / 2 on the left, k / 2 on the right.
        let geometry = ConvolutionGeometry(kernelSize: kernelSize, padLeft: (kernelSize - 1) / 2, padRight: kernelSize / 2)
        conv1 = try Conv1d(loading: "\(prefix).conv_1", from: &weights, inputChannels: channels,
                           outputChannels: filterChannels, geometry: geometry)
        conv2 = try Conv1d(loading: "\(prefix).conv_2", from: &weights, inputChannels: filterChannels,
                           outputChannels: channels, geometry: geometry)
    }

    /// x (B, T, C), mask (B, T, 1).
    public func callAsFunction(_ x: Tensor, mask: Tensor) -> Tensor {
        var input = x
        input.multiplyFrames(by: mask)
        var hidden = conv1(input)
        // ReLU is leaky ReLU with slope 0; the mask multiply before conv_2 follows it.
        hidden.applyLeakyReLU(slope: 0)
        hidden.multiplyFrames(by: mask)
        var output = conv2(hidden)
        output.multiplyFrames(by: mask)
        return output
    }
}
