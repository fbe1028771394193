/// `torch.nn.Linear` over the last axis, weight `OI`.
public struct Linear: Sendable {
    public let inputFeatures: Int
    public let outputFeatures: Int
    let weight: [Float]
    let bias: [Float]

    init(weight: [Float], bias: [Float], inputFeatures: Int, outputFeatures: Int) {
        precondition(weight.count == inputFeatures * outputFeatures && bias.count == outputFeatures)
        self.weight = weight
        self.bias = bias
        self.inputFeatures = inputFeatures
        self.outputFeatures = outputFeatures
    }

    init(loading prefix: String, from weights: inout WeightStore, inputFeatures: Int, outputFeatures: Int) throws {
        self.init(weight: try weights.take("\(prefix).weight", shape: [outputFeatures, inputFeatures]),
                  bias: try weights.take("\(prefix).bias", shape: [outputFeatures]),
                  inputFeatures: inputFeatures, outputFeatures: outputFeatures)
    }

    /// (..., I) -> (..., O)
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == inputFeatures, "Linear input \(x.shape), expected last axis \(inputFeatures)")
        let rows = x.count / inputFeatures
        var output = Tensor(zeros: Array(x.shape.dropLast()) + [outputFeatures])
        output.data.withUnsafeMutableBufferPointer { target in
            for row in 0..<rows {
                for o in 0..<outputFeatures { target[row * outputFeatures + o] = bias[o] }
            }
            x.data.withUnsafeBufferPointer { input in
                weight.withUnsafeBufferPointer { weight in
                    BLAS.sgemm(transposeB: true, m: rows, n: outputFeatures, k: inputFeatures,
                               a: input.baseAddress!, lda: inputFeatures, b: weight.baseAddress!, ldb: inputFeatures,
                               beta: 1, c: target.baseAddress!, ldc: outputFeatures)
                }
            }
        }
        return output
    }
}
