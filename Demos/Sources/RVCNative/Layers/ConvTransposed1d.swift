/// `torch.nn.ConvTranspose1d` on channels-last input.
///
/// The exported weight is `OKI` (from PyTorch's `IOK`); it is regrouped once at load into tap-major
/// `(K, O, I)` so one sgemm yields all taps of a frame side by side for the overlap-add.
public struct ConvTransposed1d: Sendable {
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    let weightTapMajor: [Float]
    let bias: [Float]?

    init(weightOKI: [Float], bias: [Float]?, inputChannels: Int, outputChannels: Int,
         kernelSize: Int, stride: Int, padding: Int) {
        precondition(weightOKI.count == outputChannels * kernelSize * inputChannels)
        precondition(bias == nil || bias?.count == outputChannels)
        self.weightTapMajor = Convolution.tapMajor(weightOKI, outputChannels: outputChannels, taps: kernelSize,
                                                   inputChannels: inputChannels)
        self.bias = bias
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
    }

    init(loading prefix: String, from weights: inout WeightStore, inputChannels: Int, outputChannels: Int,
         kernelSize: Int, stride: Int, padding: Int) throws {
        let weight = try weights.take("\(prefix).weight", shape: [outputChannels, kernelSize, inputChannels])
        let bias = try weights.take("\(prefix).bias", shape: [outputChannels])
        self.init(weightOKI: weight, bias: bias, inputChannels: inputChannels, outputChannels: outputChannels,
                  kernelSize: kernelSize, stride: stride, padding: padding)
    }

    public func outputFrames(inputFrames: Int) -> Int {
        Convolution.outputFrames(inputFrames: inputFrames, kernelSize: kernelSize, stride: stride, padding: padding)
    }

    /// (B, T, I) -> (B, T', O), optionally applying a leaky ReLU of `inputSlope` to the input first.
    public func callAsFunction(_ x: Tensor, inputSlope: Float? = nil) -> Tensor {
        precondition(x.rank == 3 && x.channelCount == inputChannels, "ConvTranspose1d input \(x.shape)")
        let (batches, inputFrames) = (x.batchCount, x.frameCount)
        let frames = outputFrames(inputFrames: inputFrames)
        var output = Tensor(zeros: [batches, frames, outputChannels])
        x.data.withUnsafeBufferPointer { input in
        output.data.withUnsafeMutableBufferPointer { target in
        weightTapMajor.withUnsafeBufferPointer { weight in
        withOptionalPointer(bias) { bias in
            for b in 0..<batches {
                Convolution.convTranspose1d(
                    input: MatrixView(base: input.baseAddress! + b * inputFrames * inputChannels,
                                      rows: inputFrames, columns: inputChannels),
                    weightTapMajor: weight.baseAddress!, bias: bias,
                    kernelSize: kernelSize, stride: stride, padding: padding, inputSlope: inputSlope,
                    output: MutableMatrixView(base: target.baseAddress! + b * frames * outputChannels,
                                              rows: frames, columns: outputChannels))
            }
        }}}}
        return output
    }
}
