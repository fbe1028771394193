/// Operations on channels-last images `(B, H, W, C)` (RMVPE's U-Net: H = time frames, W = mel bins).
extension Tensor {
    /// `torch.nn.AvgPool2d(kernel, stride=kernel)`: the mean of each non-overlapping `kh x kw` window, rows
    /// and columns past the last whole window dropped (PyTorch's floor mode, no padding).
    public func averagePooled(kernelHeight kh: Int, kernelWidth kw: Int) -> Tensor {
        precondition(rank == 4 && kh >= 1 && kw >= 1)
        let (batches, height, width, channels) = (shape[0], shape[1], shape[2], shape[3])
        let (outHeight, outWidth) = (height / kh, width / kw)
        var output = Tensor(zeros: [batches, outHeight, outWidth, channels])
        // PyTorch sums the window, then divides by its size.
        let divisor = Float(kh * kw)
        data.withUnsafeBufferPointer { input in
            output.data.withUnsafeMutableBufferPointer { target in
                for b in 0..<batches {
                    for oh in 0..<outHeight {
                        for ow in 0..<outWidth {
                            let line = target.baseAddress! + ((b * outHeight + oh) * outWidth + ow) * channels
                            for i in 0..<kh {
                                for j in 0..<kw {
                                    let source = input.baseAddress! + ((b * height + oh * kh + i) * width + ow * kw + j) * channels
                                    for c in 0..<channels { line[c] += source[c] }
                                }
                            }
                            for c in 0..<channels { line[c] /= divisor }
                        }
                    }
                }
            }
        }
        return output
    }

    /// Tensors joined along the last (channel) axis, in order: upstream's `torch.cat((x, skip), dim=1)` on
    /// NCHW. Every other axis must agree.
    public static func concatenatingChannels(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty)
        let leading = Array(parts[0].shape.dropLast())
        precondition(parts.allSatisfy { Array($0.shape.dropLast()) == leading }, "concatenatingChannels: \(parts.map(\.shape))")
        let widths = parts.map { $0.shape.last ?? 0 }
        let total = widths.reduce(0, +)
        let rows = leading.reduce(1, *)
        var result = [Float](repeating: 0, count: rows * total)
        result.withUnsafeMutableBufferPointer { target in
            var offset = 0
            for (part, width) in zip(parts, widths) {
                part.data.withUnsafeBufferPointer { source in
                    for row in 0..<rows {
                        (target.baseAddress! + row * total + offset).update(from: source.baseAddress! + row * width, count: width)
                    }
                }
                offset += width
            }
        }
        return Tensor(shape: leading + [total], data: result)
    }
}
