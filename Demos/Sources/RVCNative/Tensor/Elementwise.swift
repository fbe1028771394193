import Foundation

/// Pointwise operations, in place where upstream's result replaces its input.
extension Tensor {
    /// `values[i] = transform(values[i])` over the whole tensor, in parallel for large tensors.
    mutating func updateEach(_ transform: (Float) -> Float) {
        data.withUnsafeMutableBufferPointer { values in
            guard let base = values.baseAddress else { return }
            ParallelWork.forEachRange(count: values.count) { range in
                for i in range { base[i] = transform(base[i]) }
            }
        }
    }

    public mutating func applyLeakyReLU(slope: Float) {
        updateEach { leakyReLU($0, slope: slope) }
    }

    public mutating func applyTanh() {
        updateEach { tanhf($0) }
    }

    public mutating func scale(by factor: Float) {
        updateEach { $0 * factor }
    }

    /// Element-wise sum with a tensor of the same shape.
    public mutating func add(_ other: Tensor) {
        precondition(shape == other.shape, "add: \(shape) vs \(other.shape)")
        data.withUnsafeMutableBufferPointer { values in
            other.data.withUnsafeBufferPointer { addend in
                guard let base = values.baseAddress, let source = addend.baseAddress else { return }
                ParallelWork.forEachRange(count: values.count) { range in
                    for i in range { base[i] += source[i] }
                }
            }
        }
    }

    /// Multiplies each frame of a (B, T, C) tensor by `mask` (B, T, 1): upstream's `x * x_mask`.
    public mutating func multiplyFrames(by mask: Tensor) {
        precondition(rank == 3 && mask.shape == [shape[0], shape[1], 1], "mask \(mask.shape) for \(shape)")
        let channels = shape[2]
        data.withUnsafeMutableBufferPointer { values in
            mask.data.withUnsafeBufferPointer { weights in
                for row in 0..<weights.count {
                    let weight = weights[row]
                    if weight == 1 { continue }
                    for c in 0..<channels { values[row * channels + c] *= weight }
                }
            }
        }
    }

    /// Adds a per-batch vector (B, 1, C) to every frame of a (B, T, C) tensor: upstream's broadcast `x + cond(g)`.
    public mutating func addToEveryFrame(_ vector: Tensor) {
        precondition(rank == 3 && vector.shape == [shape[0], 1, shape[2]], "vector \(vector.shape) for \(shape)")
        let (frames, channels) = (shape[1], shape[2])
        data.withUnsafeMutableBufferPointer { values in
            vector.data.withUnsafeBufferPointer { addend in
                for b in 0..<shape[0] {
                    for t in 0..<frames {
                        let row = (b * frames + t) * channels
                        for c in 0..<channels { values[row + c] += addend[b * channels + c] }
                    }
                }
            }
        }
    }
}

/// Row-wise layer normalisation over the last axis (upstream's VITS `LayerNorm`, eps 1e-5).
func layerNormalizeRows(_ values: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
                        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, epsilon: Float = 1e-5) {
    for row in 0..<rows {
        let line = values + row * columns
        var sum = 0.0
        for c in 0..<columns { sum += Double(line[c]) }
        let mean = sum / Double(columns)
        var squares = 0.0
        for c in 0..<columns {
            let centered = Double(line[c]) - mean
            squares += centered * centered
        }
        // Biased variance, as torch.nn.functional.layer_norm.
        let inverseDeviation = Float(1 / (squares / Double(columns) + Double(epsilon)).squareRoot())
        let meanFloat = Float(mean)
        for c in 0..<columns {
            line[c] = (line[c] - meanFloat) * inverseDeviation * weight[c] + bias[c]
        }
    }
}

/// Row-wise softmax over the last axis, max-subtracted as torch does.
func softmaxRows(_ values: UnsafeMutablePointer<Float>, rows: Int, columns: Int, rowStride: Int) {
    for row in 0..<rows {
        let line = values + row * rowStride
        var maximum = -Float.infinity
        for c in 0..<columns { maximum = max(maximum, line[c]) }
        var sum: Float = 0
        for c in 0..<columns {
            let e = expf(line[c] - maximum)
            line[c] = e
            sum += e
        }
        let inverse = 1 / sum
        for c in 0..<columns { line[c] *= inverse }
    }
}
