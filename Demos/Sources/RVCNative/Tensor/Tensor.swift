/// A dense, row-major Float32 array with a shape.
///
/// Activations are channels-last: (batch, time, channels), so a frame's channels are contiguous and a
/// 1-D convolution is one matrix product over frames. Weights keep the exported layouts
/// (Conv1d `OKI`, Linear `OI`, Embedding `ND`). Value semantics come from `Array`'s copy-on-write.
public struct Tensor: Equatable, Sendable {
    public private(set) var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(shape.reduce(1, *) == data.count, "shape \(shape) does not hold \(data.count) values")
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: [Int]) {
        self.init(shape: shape, data: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    public init(shape: [Int], repeating value: Float) {
        self.init(shape: shape, data: [Float](repeating: value, count: shape.reduce(1, *)))
    }

    public var count: Int { data.count }
    public var rank: Int { shape.count }

    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, data: data)
    }

    /// The axes reordered: `permuted([0, 2, 1])` turns (B, C, T) into (B, T, C).
    public func permuted(_ axes: [Int]) -> Tensor {
        precondition(axes.sorted() == Array(0..<rank), "\(axes) is not a permutation of \(rank) axes")
        if axes == Array(0..<rank) { return self }
        let newShape = axes.map { shape[$0] }
        var sourceStrides = [Int](repeating: 1, count: rank)
        for axis in stride(from: rank - 2, through: 0, by: -1) {
            sourceStrides[axis] = sourceStrides[axis + 1] * shape[axis + 1]
        }
        let strides = axes.map { sourceStrides[$0] }
        var result = [Float](repeating: 0, count: count)
        var index = [Int](repeating: 0, count: rank)
        data.withUnsafeBufferPointer { source in
            result.withUnsafeMutableBufferPointer { target in
                var offset = 0
                for position in 0..<target.count {
                    target[position] = source[offset]
                    // Advance the multi-index of the target, carrying into slower axes.
                    var axis = rank - 1
                    while axis >= 0 {
                        index[axis] += 1
                        offset += strides[axis]
                        if index[axis] < newShape[axis] { break }
                        offset -= strides[axis] * newShape[axis]
                        index[axis] = 0
                        axis -= 1
                    }
                }
            }
        }
        return Tensor(shape: newShape, data: result)
    }

    // MARK: Channels-last (batch, time, channels) views

    public var batchCount: Int { shape[0] }
    public var frameCount: Int { shape[1] }
    public var channelCount: Int { shape[2] }

    /// Frames `range` of a (B, T, C) tensor.
    public func frames(_ range: Range<Int>) -> Tensor {
        precondition(rank == 3 && range.lowerBound >= 0 && range.upperBound <= frameCount)
        let (batches, frames, channels) = (shape[0], shape[1], shape[2])
        var result = [Float](repeating: 0, count: batches * range.count * channels)
        data.withUnsafeBufferPointer { source in
            result.withUnsafeMutableBufferPointer { target in
                for b in 0..<batches {
                    let from = source.baseAddress! + (b * frames + range.lowerBound) * channels
                    let to = target.baseAddress! + b * range.count * channels
                    to.update(from: from, count: range.count * channels)
                }
            }
        }
        return Tensor(shape: [batches, range.count, channels], data: result)
    }

    /// Channels `range` of a (B, T, C) tensor.
    public func channels(_ range: Range<Int>) -> Tensor {
        precondition(rank == 3 && range.lowerBound >= 0 && range.upperBound <= channelCount)
        let rows = shape[0] * shape[1]
        let channels = shape[2]
        var result = [Float](repeating: 0, count: rows * range.count)
        data.withUnsafeBufferPointer { source in
            result.withUnsafeMutableBufferPointer { target in
                for row in 0..<rows {
                    let from = source.baseAddress! + row * channels + range.lowerBound
                    (target.baseAddress! + row * range.count).update(from: from, count: range.count)
                }
            }
        }
        return Tensor(shape: [shape[0], shape[1], range.count], data: result)
    }

    /// Tensors concatenated along axis 1 (time, for (B, T, C)); all other axes must agree.
    public static func concatenatingFrames(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty)
        let first = parts[0]
        precondition(parts.allSatisfy { $0.rank == 3 && $0.shape[0] == first.shape[0] && $0.shape[2] == first.shape[2] })
        let totalFrames = parts.reduce(0) { $0 + $1.shape[1] }
        let (batches, channels) = (first.shape[0], first.shape[2])
        var result = [Float]()
        result.reserveCapacity(batches * totalFrames * channels)
        for b in 0..<batches {
            for part in parts {
                let size = part.shape[1] * channels
                result.append(contentsOf: part.data[(b * size)..<((b + 1) * size)])
            }
        }
        return Tensor(shape: [batches, totalFrames, channels], data: result)
    }
}
