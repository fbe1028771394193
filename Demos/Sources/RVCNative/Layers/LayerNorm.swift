/// VITS's channel `LayerNorm` (gamma/beta, exported as weight/bias), eps 1e-5: on channels-last data it
/// normalises each frame's channel vector, which is the last axis.
public struct LayerNorm: Sendable {
    public let channels: Int
    let weight: [Float]
    let bias: [Float]

    init(loading prefix: String, from weights: inout WeightStore, channels: Int) throws {
        weight = try weights.take("\(prefix).weight", shape: [channels])
        bias = try weights.take("\(prefix).bias", shape: [channels])
        self.channels = channels
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == channels)
        var output = x
        output.data.withUnsafeMutableBufferPointer { values in
            weight.withUnsafeBufferPointer { weight in
                bias.withUnsafeBufferPointer { bias in
                    layerNormalizeRows(values.baseAddress!, rows: x.count / channels, columns: channels,
                                       weight: weight.baseAddress!, bias: bias.baseAddress!)
                }
            }
        }
        return output
    }
}
