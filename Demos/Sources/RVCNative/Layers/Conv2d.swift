import Foundation

/// `torch.nn.Conv2d` (stride 1, zero padding) on channels-last images, weight in the exported `OHWI` layout.
///
/// Images are `(B, H, W, C)` tensors; for RMVPE, H is time frames and W mel bins (upstream's NCHW
/// `(B, C, T, 128)` with the channels moved last). Each output pixel's receptive field is unfolded into one
/// row (im2col, `kh * KW * I + kw * I + i`, the order of an `OHWI` weight row), so a tile of pixels is one
/// sgemm against the weight; tiles run in parallel with bounded scratch.
public struct Conv2d: Sendable {
    /// Below this many output pixels per worker, the workers split the output channels instead of the pixels.
    static let minimumRowsPerWorker = 256

    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let paddingHeight: Int
    public let paddingWidth: Int
    /// (O, KH, KW, I) row-major: row `o` is the unfolded receptive field.
    let weight: [Float]
    let bias: [Float]?
    /// 3x3 kernels with padding 1 and at least `winogradMinimumChannels` input channels take F(2x2, 3x3)
    /// Winograd products (`Convolution.winogradConv2d`).
    let usesWinograd: Bool

    init(weight: [Float], bias: [Float]?, inputChannels: Int, outputChannels: Int,
         kernelSize: (height: Int, width: Int), padding: (height: Int, width: Int),
         winogradMinimumChannels: Int = Conv2d.winogradMinimumChannels) {
        precondition(weight.count == outputChannels * kernelSize.height * kernelSize.width * inputChannels)
        precondition(bias == nil || bias?.count == outputChannels)
        precondition(padding.height >= 0 && padding.width >= 0)
        self.bias = bias
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelHeight = kernelSize.height
        self.kernelWidth = kernelSize.width
        self.paddingHeight = padding.height
        self.paddingWidth = padding.width
        usesWinograd = kernelSize == (3, 3) && padding == (1, 1) && inputChannels >= winogradMinimumChannels
        // The transformed taps take 16/9 of the weight's memory (kept, RMVPE's came to 640 MB beside its 360 MB
        // of weights), so each call transforms its layer's taps and drops them: 16 products per input-output
        // channel pair, little beside the convolution's 9 per pixel, and the extra memory is one layer's (16 MB
        // at most). On 60 s of audio the whole conversion's peak fell from 2.01 to 1.73 GB.
        self.weight = weight
    }

    /// Below this many input channels the Winograd products are too thin for BLAS to gain (measured on RMVPE,
    /// 30 s of audio, 2 cores, ms per convolution, im2col -> Winograd: 16 channels 28 -> 30, 32: 15.7 -> 15.1,
    /// 64: 13.0 -> 10.6, 128: 12.5 -> 7.4, 256: 11.0 -> 5.9, 512: 13.6 -> 8.0); the transformed taps take 16/9
    /// of the weight's memory, so the even case stays on im2col. `RVC_WINOGRAD2D_MIN_CHANNELS` overrides it.
    static let winogradMinimumChannels: Int = {
        Int(ProcessInfo.processInfo.environment["RVC_WINOGRAD2D_MIN_CHANNELS"] ?? "") ?? 64
    }()

    /// Reads `<prefix>.weight` (O, K, K, I) and, with `hasBias`, `<prefix>.bias` (O): a square kernel with
    /// the same padding on every side, as every RMVPE convolution.
    init(loading prefix: String, from weights: inout WeightStore, inputChannels: Int, outputChannels: Int,
         kernelSize: Int, padding: Int, hasBias: Bool) throws {
        let weight = try weights.take("\(prefix).weight", shape: [outputChannels, kernelSize, kernelSize, inputChannels])
        let bias = hasBias ? try weights.take("\(prefix).bias", shape: [outputChannels]) : nil
        self.init(weight: weight, bias: bias, inputChannels: inputChannels, outputChannels: outputChannels,
                  kernelSize: (kernelSize, kernelSize), padding: (padding, padding))
    }

    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        (max(0, height + 2 * paddingHeight - kernelHeight + 1), max(0, width + 2 * paddingWidth - kernelWidth + 1))
    }

    /// (B, H, W, I) -> (B, H', W', O).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[3] == inputChannels, "Conv2d input \(x.shape), expected I = \(inputChannels)")
        let (batches, height, width) = (x.shape[0], x.shape[1], x.shape[2])
        let out = outputSize(height: height, width: width)
        var output = Tensor(zeros: [batches, out.height, out.width, outputChannels])
        let (inputItem, outputItem) = (height * width * inputChannels, out.height * out.width * outputChannels)
        let winograd = usesWinograd
            ? Winograd2dWeights(weightOHWI: weight, outChannels: outputChannels, inChannels: inputChannels) : nil
        x.data.withUnsafeBufferPointer { input in
            output.data.withUnsafeMutableBufferPointer { target in
                weight.withUnsafeBufferPointer { weight in
                    withOptionalPointer(bias) { bias in
                        for b in 0..<batches {
                            if let winograd {
                                Convolution.winogradConv2d(input: input.baseAddress! + b * inputItem, height: height,
                                                           width: width, weights: winograd, bias: bias,
                                                           output: target.baseAddress! + b * outputItem)
                                continue
                            }
                            convolve(input: input.baseAddress! + b * inputItem, height: height, width: width,
                                     weight: weight.baseAddress!, bias: bias,
                                     output: target.baseAddress! + b * outputItem, outHeight: out.height, outWidth: out.width)
                        }
                    }
                }
            }
        }
        return output
    }

    /// `y += self(x)` bit for bit, without holding `self(x)` whole: for the 1x1 shortcut of a `ConvBlockRes`,
    /// whose image is as large as the block's output (50 MB at 16 channels for 60 s of audio). Each tile of
    /// pixels is computed into scratch as `callAsFunction` computes it (the bias, then the same sgemm with
    /// beta 1 on the same tiles) and added to y's pixels, as `Tensor.add` adds. Kernels that unfold pixels,
    /// and images small enough to split the output channels instead of the pixels, take the whole product.
    public func add(_ x: Tensor, to y: inout Tensor) {
        precondition(x.rank == 4 && x.shape[3] == inputChannels, "Conv2d input \(x.shape), expected I = \(inputChannels)")
        let (batches, height, width) = (x.shape[0], x.shape[1], x.shape[2])
        let pointwise = kernelHeight == 1 && kernelWidth == 1 && paddingHeight == 0 && paddingWidth == 0
        let pixelCount = height * width
        guard pointwise, !splitsOutputChannels(pixelCount: pixelCount) else {
            y.add(self(x))
            return
        }
        precondition(y.shape == [batches, height, width, outputChannels], "add: \(y.shape) for conv of \(x.shape)")
        let (inChannels, outChannels) = (inputChannels, outputChannels)
        x.data.withUnsafeBufferPointer { input in
            y.data.withUnsafeMutableBufferPointer { target in
                weight.withUnsafeBufferPointer { weight in
                    withOptionalPointer(bias) { bias in
                        for b in 0..<batches {
                            let (image, sum) = (input.baseAddress! + b * pixelCount * inChannels,
                                                target.baseAddress! + b * pixelCount * outChannels)
                            Convolution.forEachTile(rows: pixelCount, rowFloats: 0,
                                                    scratchFloats: { $0 * outChannels }) { pixels, scratch in
                                for row in 0..<pixels.count {
                                    let line = scratch + row * outChannels
                                    if let bias { line.update(from: bias, count: outChannels) }
                                    else { line.update(repeating: 0, count: outChannels) }
                                }
                                BLAS.sgemm(
                                    transposeB: true, m: pixels.count, n: outChannels, k: inChannels,
                                    a: image + pixels.lowerBound * inChannels, lda: inChannels, b: weight.baseAddress!,
                                    ldb: inChannels, beta: 1, c: scratch, ldc: outChannels)
                                let rows = sum + pixels.lowerBound * outChannels
                                for i in 0..<(pixels.count * outChannels) { rows[i] += scratch[i] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Whether an image of `pixelCount` output pixels is convolved by splitting the output channels among the
    /// workers rather than the pixels.
    private func splitsOutputChannels(pixelCount: Int) -> Bool {
        let workers = ParallelWork.workerCount
        return workers > 1 && pixelCount < workers * Self.minimumRowsPerWorker
            && outputChannels >= workers * Self.minimumRowsPerWorker / 4
    }

    /// One image: output pixels in row-major (h, w) order are the rows of an `(H' * W') x O` matrix.
    private func convolve(input: UnsafePointer<Float>, height: Int, width: Int,
                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                          output: UnsafeMutablePointer<Float>, outHeight: Int, outWidth: Int) {
        let (inChannels, outChannels) = (inputChannels, outputChannels)
        let unfoldedWidth = kernelHeight * kernelWidth * inChannels
        // A 1x1 kernel without padding reads each pixel's channels as they are stored.
        let pointwise = kernelHeight == 1 && kernelWidth == 1 && paddingHeight == 0 && paddingWidth == 0
        let pixelCount = outHeight * outWidth
        if splitsOutputChannels(pixelCount: pixelCount) {
            let workers = ParallelWork.workerCount
            // Few pixels, many channels (RMVPE's bottleneck: 4 mel bins x T / 32 frames, 512 channels): split
            // the output channels among the workers instead, so each multiplies every pixel by its share of
            // the weight rather than all the weight by too few pixels.
            let unfolded = UnsafeMutablePointer<Float>.allocate(capacity: pointwise ? 0 : pixelCount * unfoldedWidth)
            defer { unfolded.deallocate() }
            if !pointwise { unfold(input, height: height, width: width, pixels: 0..<pixelCount, outWidth: outWidth, into: unfolded) }
            let source = pointwise ? input : UnsafePointer(unfolded)
            let share = (outChannels + workers - 1) / workers
            ParallelWork.run(workers: workers) { worker, _ in
                let channels = (worker * share)..<min(outChannels, (worker + 1) * share)
                guard !channels.isEmpty else { return }
                for pixel in 0..<pixelCount {
                    let line = output + pixel * outChannels + channels.lowerBound
                    if let bias { line.update(from: bias + channels.lowerBound, count: channels.count) }
                    else { line.update(repeating: 0, count: channels.count) }
                }
                BLAS.sgemm(
                    transposeB: true, m: pixelCount, n: channels.count, k: unfoldedWidth,
                    a: source, lda: pointwise ? inChannels : unfoldedWidth,
                    b: weight + channels.lowerBound * unfoldedWidth, ldb: unfoldedWidth,
                    beta: 1, c: output + channels.lowerBound, ldc: outChannels)
            }
            return
        }
        Convolution.forEachTile(rows: pixelCount, rowFloats: pointwise ? 0 : unfoldedWidth) { pixels, scratch in
            for pixel in pixels {
                let line = output + pixel * outChannels
                if let bias { line.update(from: bias, count: outChannels) } else { line.update(repeating: 0, count: outChannels) }
            }
            var source = input + pixels.lowerBound * inChannels
            var sourceStride = inChannels
            if !pointwise {
                unfold(input, height: height, width: width, pixels: pixels, outWidth: outWidth, into: scratch)
                source = UnsafePointer(scratch)
                sourceStride = unfoldedWidth
            }
            BLAS.sgemm(
                transposeB: true, m: pixels.count, n: outChannels, k: unfoldedWidth,
                a: source, lda: sourceStride, b: weight, ldb: unfoldedWidth,
                beta: 1, c: output + pixels.lowerBound * outChannels, ldc: outChannels)
        }
    }

    /// Rows of the im2col matrix for output `pixels` (row-major (h, w) over an `outWidth`-wide output):
    /// row r holds the receptive field of pixel `pixels.lowerBound + r`, `kh * KW * I + kw * I + i`.
    private func unfold(_ input: UnsafePointer<Float>, height: Int, width: Int, pixels: Range<Int>, outWidth: Int,
                        into unfolded: UnsafeMutablePointer<Float>) {
        let inChannels = inputChannels
        let unfoldedWidth = kernelHeight * kernelWidth * inChannels
        let kernelRowFloats = kernelWidth * inChannels
        for (r, pixel) in pixels.enumerated() {
            let (h, w) = (pixel / outWidth, pixel % outWidth)
            // Within one kernel row the taps are neighbouring pixels, contiguous in a channels-last image: one
            // copy per kernel row, zeros where the kernel hangs over an edge.
            let firstColumn = w - paddingWidth
            let (from, to) = (max(0, firstColumn), min(width, firstColumn + kernelWidth))
            let (zerosBefore, copied) = ((from - firstColumn) * inChannels, max(0, to - from) * inChannels)
            var target = unfolded + r * unfoldedWidth
            for kh in 0..<kernelHeight {
                let row = h + kh - paddingHeight
                if row < 0 || row >= height || copied == 0 {
                    target.update(repeating: 0, count: kernelRowFloats)
                } else {
                    if zerosBefore > 0 { target.update(repeating: 0, count: zerosBefore) }
                    (target + zerosBefore).update(from: input + (row * width + from) * inChannels, count: copied)
                    let zerosAfter = kernelRowFloats - zerosBefore - copied
                    if zerosAfter > 0 { (target + zerosBefore + copied).update(repeating: 0, count: zerosAfter) }
                }
                target += kernelRowFloats
            }
        }
    }
}
