/// `torch.nn.Conv1d` on channels-last input, weight in the exported `OKI` layout.
public struct Conv1d: Sendable {
    /// How the taps are multiplied: stride-1 kernels of 3 or more taps through F(4, 3) Winograd products,
    /// the rest directly from the (O, K, I) weight.
    enum Kernel: Sendable {
        case direct([Float])
        case winograd(WinogradWeights)
    }

    public let inputChannels: Int
    public let outputChannels: Int
    let geometry: ConvolutionGeometry
    let kernel: Kernel
    let bias: [Float]?

    init(weight: [Float], bias: [Float]?, inputChannels: Int, outputChannels: Int, geometry: ConvolutionGeometry) {
        precondition(weight.count == outputChannels * geometry.kernelSize * inputChannels)
        precondition(bias == nil || bias?.count == outputChannels)
        if geometry.stride == 1 && geometry.kernelSize >= 3 {
            kernel = .winograd(WinogradWeights(weightOKI: weight, outChannels: outputChannels,
                                               kernelSize: geometry.kernelSize, inChannels: inputChannels))
        } else {
            kernel = .direct(weight)
        }
        self.bias = bias
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.geometry = geometry
    }

    /// Reads `<prefix>.weight` (O, K, I) and, with `hasBias`, `<prefix>.bias` (O).
    init(loading prefix: String, from weights: inout WeightStore, inputChannels: Int, outputChannels: Int,
         geometry: ConvolutionGeometry = ConvolutionGeometry(kernelSize: 1), hasBias: Bool = true) throws {
        let weight = try weights.take("\(prefix).weight", shape: [outputChannels, geometry.kernelSize, inputChannels])
        let bias = hasBias ? try weights.take("\(prefix).bias", shape: [outputChannels]) : nil
        self.init(weight: weight, bias: bias, inputChannels: inputChannels, outputChannels: outputChannels, geometry: geometry)
    }

    public func outputFrames(inputFrames: Int) -> Int {
        geometry.outputFrames(inputFrames: inputFrames)
    }

    /// One batch item: `output (+)= conv(leaky_relu(input))`.
    func apply(input: MatrixView, output: MutableMatrixView, inputSlope: Float? = nil, accumulate: Bool = false) {
        precondition(input.columns == inputChannels && output.columns == outputChannels)
        withOptionalPointer(bias) { bias in
            switch kernel {
            case let .winograd(weights):
                Convolution.winogradConv1d(input: input, weights: weights, bias: bias, geometry: geometry,
                                           inputSlope: inputSlope, accumulate: accumulate, output: output)
            case let .direct(weight):
                weight.withUnsafeBufferPointer { weight in
                    Convolution.conv1d(input: input, weight: weight.baseAddress!, bias: bias, geometry: geometry,
                                       inputSlope: inputSlope, accumulate: accumulate, output: output)
                }
            }
        }
    }

    /// (B, T, I) -> (B, T', O), optionally applying a leaky ReLU of `inputSlope` to the input first.
    public func callAsFunction(_ x: Tensor, inputSlope: Float? = nil) -> Tensor {
        precondition(x.rank == 3 && x.channelCount == inputChannels, "Conv1d input \(x.shape), expected I = \(inputChannels)")
        let frames = outputFrames(inputFrames: x.frameCount)
        var output = Tensor(zeros: [x.batchCount, frames, outputChannels])
        apply(x, into: &output, inputSlope: inputSlope, accumulate: false)
        return output
    }

    /// `output += conv(x)` (upstream's `x = conv(...) + x`) without a temporary.
    public func accumulate(_ x: Tensor, into output: inout Tensor, inputSlope: Float? = nil) {
        apply(x, into: &output, inputSlope: inputSlope, accumulate: true)
    }

    /// `output (+)= conv(x)` into a buffer of the output shape, reused across calls by the caller.
    func apply(_ x: Tensor, into output: inout Tensor, inputSlope: Float?, accumulate: Bool) {
        let frames = outputFrames(inputFrames: x.frameCount)
        precondition(output.shape == [x.batchCount, frames, outputChannels], "Conv1d output \(output.shape)")
        let inputFrames = x.frameCount
        x.data.withUnsafeBufferPointer { input in
            output.data.withUnsafeMutableBufferPointer { target in
                for b in 0..<x.batchCount {
                    apply(input: MatrixView(base: input.baseAddress! + b * inputFrames * inputChannels,
                                            rows: inputFrames, columns: inputChannels),
                          output: MutableMatrixView(base: target.baseAddress! + b * frames * outputChannels,
                                                    rows: frames, columns: outputChannels),
                          inputSlope: inputSlope, accumulate: accumulate)
                }
            }
        }
    }
}
