/// `torch.nn.BatchNorm2d` (or 1d) in inference mode over the last (channel) axis of a channels-last tensor:
/// `(x - running_mean) / sqrt(running_var + eps) * weight + bias`, with the batch statistics never used.
///
/// As PyTorch's CPU kernel does, the four vectors are folded once into a per-channel scale
/// `weight / sqrt(var + eps)` and shift `bias - mean * scale` (here in double precision, rounded once).
public struct BatchNorm: Sendable {
    public let channels: Int
    let scale: [Float]
    let shift: [Float]

    init(weight: [Float], bias: [Float], runningMean: [Float], runningVariance: [Float], epsilon: Double) {
        channels = weight.count
        precondition([bias.count, runningMean.count, runningVariance.count].allSatisfy { $0 == weight.count })
        var scale = [Float](repeating: 0, count: channels)
        var shift = [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            let factor = Double(weight[c]) / (Double(runningVariance[c]) + epsilon).squareRoot()
            scale[c] = Float(factor)
            shift[c] = Float(Double(bias[c]) - Double(runningMean[c]) * factor)
        }
        self.scale = scale
        self.shift = shift
    }

    /// Reads `<prefix>.{weight,bias,running_mean,running_var}` (C each), PyTorch's names.
    init(loading prefix: String, from weights: inout WeightStore, channels: Int, epsilon: Double) throws {
        self.init(weight: try weights.take("\(prefix).weight", shape: [channels]),
                  bias: try weights.take("\(prefix).bias", shape: [channels]),
                  runningMean: try weights.take("\(prefix).running_mean", shape: [channels]),
                  runningVariance: try weights.take("\(prefix).running_var", shape: [channels]),
                  epsilon: epsilon)
    }

    /// Normalises `x` in place; with `relu`, also applies the ReLU that follows every RMVPE BatchNorm but the
    /// input one (one pass over the data instead of two).
    public func apply(to x: inout Tensor, relu: Bool = false) {
        precondition(x.shape.last == channels, "BatchNorm input \(x.shape), expected \(channels) channels")
        let pixels = x.count / max(channels, 1)
        x.data.withUnsafeMutableBufferPointer { values in
            scale.withUnsafeBufferPointer { scale in
                shift.withUnsafeBufferPointer { shift in
                    for pixel in 0..<pixels {
                        let line = values.baseAddress! + pixel * channels
                        for c in 0..<channels {
                            let y = line[c] * scale[c] + shift[c]
                            line[c] = relu ? max(y, 0) : y
                        }
                    }
                }
            }
        }
    }
}
