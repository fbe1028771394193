/// 1-D convolutions over channels-last frames, as matrix products.
///
/// Both kernels work on one batch item: `frames x channels` row-major matrices given by pointer and row
/// stride, so a channel slice of a wider tensor can be read or written in place. Each can apply a leaky
/// ReLU to its input on the fly (upstream's `F.leaky_relu` before most HiFi-GAN convolutions), which saves
/// a full-size temporary in the decoder.
struct ConvolutionGeometry: Equatable, Sendable {
    var kernelSize: Int
    var stride: Int = 1
    var dilation: Int = 1
    var padLeft: Int = 0
    var padRight: Int = 0

    /// PyTorch's `Conv1d(padding: p)`: the same padding on both sides.
    init(kernelSize: Int, stride: Int = 1, dilation: Int = 1, padding: Int = 0) {
        self.init(kernelSize: kernelSize, stride: stride, dilation: dilation, padLeft: padding, padRight: padding)
    }

    init(kernelSize: Int, stride: Int = 1, dilation: Int = 1, padLeft: Int, padRight: Int) {
        precondition(kernelSize >= 1 && stride >= 1 && dilation >= 1 && padLeft >= 0 && padRight >= 0)
        self.kernelSize = kernelSize
        self.stride = stride
        self.dilation = dilation
        self.padLeft = padLeft
        self.padRight = padRight
    }

    func outputFrames(inputFrames: Int) -> Int {
        let span = dilation * (kernelSize - 1) + 1
        let padded = inputFrames + padLeft + padRight
        return padded < span ? 0 : (padded - span) / stride + 1
    }

    /// The unpadded matrix product needs no copy of the input at all.
    var isPointwise: Bool { kernelSize == 1 && stride == 1 && padLeft == 0 && padRight == 0 }
}

/// A channels-last matrix: `rows` frames of `columns` channels, each row `rowStride` floats apart, read
/// (`MatrixView`) or written (`MutableMatrixView`) through `base`.
struct StridedMatrix<Pointer: Strideable> where Pointer.Stride == Int {
    var base: Pointer
    var rows: Int
    var columns: Int
    var rowStride: Int

    init(base: Pointer, rows: Int, columns: Int, rowStride: Int? = nil) {
        self.base = base
        self.rows = rows
        self.columns = columns
        self.rowStride = rowStride ?? columns
    }
}

typealias MatrixView = StridedMatrix<UnsafePointer<Float>>
typealias MutableMatrixView = StridedMatrix<UnsafeMutablePointer<Float>>

@inline(__always)
func leakyReLU(_ value: Float, slope: Float) -> Float {
    value > 0 ? value : value * slope
}

enum Convolution {
    /// Output frames one tile of unfolded input aims for: enough for an efficient matrix product, small
    /// enough that the tile stays in cache.
    static let tileRowTarget = 1024
    /// Upper bound on one tile's unfolded floats (16 MB), for very wide kernels.
    static let tileFloatLimit = 1 << 22

    /// `output (+)= conv1d(activation(input))`, weight `O x (K * I)` row-major (the exported `OKI` layout).
    ///
    /// Unfolds a tile of output frames at a time (im2col) and multiplies it by the weight with one sgemm, so
    /// scratch memory stays bounded whatever the length; tiles run in parallel. With `accumulate` the result
    /// is added to what `output` holds (upstream's `x = conv(...) + x`); otherwise `output` is overwritten.
    /// Stride-1 kernels of three or more taps take `winogradConv1d` instead (see `Conv1d`).
    static func conv1d(
        input: MatrixView,
        weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?,
        geometry: ConvolutionGeometry,
        inputSlope: Float? = nil,
        accumulate: Bool = false,
        output: MutableMatrixView
    ) {
        let inChannels = input.columns
        let outChannels = output.columns
        let unfoldedWidth = geometry.kernelSize * inChannels
        precondition(output.rows == geometry.outputFrames(inputFrames: input.rows), "conv1d output frame count")
        let pointwise = geometry.isPointwise && inputSlope == nil
        forEachTile(rows: output.rows, rowFloats: pointwise ? 0 : unfoldedWidth) { rows, scratch in
            // Bias first, then the product accumulates on top (beta = 1).
            for row in rows {
                let line = output.base + row * output.rowStride
                if accumulate {
                    if let bias { for o in 0..<outChannels { line[o] += bias[o] } }
                } else if let bias {
                    line.update(from: bias, count: outChannels)
                } else {
                    line.update(repeating: 0, count: outChannels)
                }
            }
            var source = input.base + rows.lowerBound * input.rowStride
            var sourceStride = input.rowStride
            if !pointwise {
                for r in 0..<rows.count {
                    let firstSource = (rows.lowerBound + r) * geometry.stride - geometry.padLeft
                    for k in 0..<geometry.kernelSize {
                        copyFrames(input, from: firstSource + k * geometry.dilation, count: 1, slope: inputSlope,
                                   into: scratch + r * unfoldedWidth + k * inChannels)
                    }
                }
                source = UnsafePointer(scratch)
                sourceStride = unfoldedWidth
            }
            BLAS.sgemm(transposeB: true, m: rows.count, n: outChannels, k: unfoldedWidth,
                       a: source, lda: sourceStride, b: weight, ldb: unfoldedWidth,
                       beta: 1, c: output.base + rows.lowerBound * output.rowStride, ldc: output.rowStride)
        }
    }

    /// Frames [first, first + count) of `input` into contiguous rows, zeros outside the input (the
    /// convolution's padding), with a leaky ReLU of `slope` applied on the way.
    static func copyFrames(_ input: MatrixView, from first: Int, count: Int, slope: Float?,
                           into target: UnsafeMutablePointer<Float>) {
        let width = input.columns
        for r in 0..<count {
            let frame = first + r
            let row = target + r * width
            if frame < 0 || frame >= input.rows {
                row.update(repeating: 0, count: width)
            } else {
                Vectorized.copy(input.base + frame * input.rowStride, to: row, count: width, slope: slope)
            }
        }
    }

    /// `output = conv_transpose1d(activation(input))`, weight `(K * O) x I` row-major: the exported `OKI`
    /// weight regrouped kernel-tap-major (see `ConvTransposed1d`).
    ///
    /// For a tile of output frames, one sgemm gives every tap of the input frames that reach it,
    /// `rows x (K * O)`; overlap-add then places tap `k` of input frame `t` at output frame
    /// `t * stride + k - padding`, as PyTorch defines it. Tiles own disjoint output frames, so they run in
    /// parallel; input frames reaching two tiles are multiplied twice, a few rows per tile.
    static func convTranspose1d(
        input: MatrixView,
        weightTapMajor: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?,
        kernelSize: Int,
        stride: Int,
        padding: Int,
        inputSlope: Float? = nil,
        output: MutableMatrixView
    ) {
        let inChannels = input.columns
        let outChannels = output.columns
        let tapsWidth = kernelSize * outChannels
        precondition(output.rows == outputFrames(inputFrames: input.rows, kernelSize: kernelSize,
                                                 stride: stride, padding: padding))
        let inputPerOutputRow = Double(inChannels + tapsWidth) / Double(stride)
        forEachTile(rows: output.rows, rowFloats: Int(inputPerOutputRow.rounded(.up)) + 2 * (inChannels + tapsWidth)) { rows, _ in
            let sources = transposedInputs(reaching: rows, inputCount: input.rows, kernelSize: kernelSize,
                                           stride: stride, padding: padding)
            let taps = UnsafeMutablePointer<Float>.allocate(capacity: sources.count * tapsWidth)
            defer { taps.deallocate() }
            let activated = UnsafeMutablePointer<Float>.allocate(capacity: inputSlope == nil ? 0 : sources.count * inChannels)
            defer { activated.deallocate() }
            for row in rows {
                let line = output.base + row * output.rowStride
                if let bias { line.update(from: bias, count: outChannels) } else { line.update(repeating: 0, count: outChannels) }
            }
            guard !sources.isEmpty else { return }
            var source = input.base + sources.lowerBound * input.rowStride
            var sourceStride = input.rowStride
            if let slope = inputSlope {
                for r in 0..<sources.count {
                    let line = source + r * input.rowStride
                    let target = activated + r * inChannels
                    for i in 0..<inChannels { target[i] = leakyReLU(line[i], slope: slope) }
                }
                source = UnsafePointer(activated)
                sourceStride = inChannels
            }
            BLAS.sgemm(
                transposeB: true, m: sources.count, n: tapsWidth, k: inChannels,
                a: source, lda: sourceStride, b: weightTapMajor, ldb: inChannels,
                beta: 0, c: taps, ldc: tapsWidth)
            for (r, t) in sources.enumerated() {
                let first = t * stride - padding
                for k in 0..<kernelSize where rows.contains(first + k) {
                    let line = output.base + (first + k) * output.rowStride
                    let contribution = taps + r * tapsWidth + k * outChannels
                    for o in 0..<outChannels { line[o] += contribution[o] }
                }
            }
        }
    }

    /// A transposed convolution's output length along one axis, as PyTorch defines it; `outputPadding`
    /// only adds rows at the far edge (`ConvTranspose2d(output_padding=...)`).
    static func outputFrames(inputFrames: Int, kernelSize: Int, stride: Int, padding: Int, outputPadding: Int = 0) -> Int {
        max(0, (inputFrames - 1) * stride - 2 * padding + kernelSize + outputPadding)
    }

    /// The input positions of a transposed convolution whose taps reach output positions [a, b) along one
    /// axis: those t with t * stride - padding + k in [a, b) for some tap k in [0, kernelSize).
    static func transposedInputs(reaching outputs: Range<Int>, inputCount: Int, kernelSize: Int, stride: Int,
                                 padding: Int) -> Range<Int> {
        let first = outputs.lowerBound + padding - kernelSize + 1
        let low = first <= 0 ? 0 : (first + stride - 1) / stride
        let high = min(inputCount, (outputs.upperBound - 1 + padding) / stride + 1)
        return low..<max(low, high)
    }

    /// A transposed convolution's exported weight `(O, taps, I)` regrouped tap-major, `(taps, O, I)`, so one
    /// sgemm of input rows by it yields every tap of each input position side by side for the overlap-add.
    static func tapMajor(_ weight: [Float], outputChannels: Int, taps: Int, inputChannels: Int) -> [Float] {
        precondition(weight.count == outputChannels * taps * inputChannels)
        var regrouped = [Float](repeating: 0, count: weight.count)
        for o in 0..<outputChannels {
            for tap in 0..<taps {
                for i in 0..<inputChannels {
                    regrouped[(tap * outputChannels + o) * inputChannels + i] = weight[(o * taps + tap) * inputChannels + i]
                }
            }
        }
        return regrouped
    }

    /// Splits `rows` output frames into tiles and runs `body(tileRows, scratch)` on them in parallel,
    /// each worker with its own scratch. Tiles aim at `tileRowTarget` rows (fewer when a row needs many
    /// floats, `rowFloats`), are a multiple of `alignment` rows, and are short enough to keep every worker
    /// busy. Scratch is `scratchFloats(tileRows)` floats, by default `tileRows * rowFloats`.
    static func forEachTile(rows: Int, rowFloats: Int, alignment: Int = 1,
                            scratchFloats: ((Int) -> Int)? = nil,
                            _ body: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
        guard rows > 0 else { return }
        let workers = ParallelWork.workerCount
        var tileRows = min(tileRowTarget, max(1, tileFloatLimit / max(rowFloats, 1)))
        tileRows = min(tileRows, max(64, (rows + workers - 1) / workers))
        tileRows = (tileRows + alignment - 1) / alignment * alignment
        let tileCount = (rows + tileRows - 1) / tileRows
        let scratchCount = scratchFloats?(tileRows) ?? tileRows * rowFloats
        ParallelWork.run(workers: min(workers, tileCount)) { worker, workerCount in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)
            defer { scratch.deallocate() }
            var tile = worker
            while tile < tileCount {
                let start = tile * tileRows
                body(start..<min(rows, start + tileRows), scratch)
                tile += workerCount
            }
        }
    }
}

/// Runs `body` with a pointer to an optional array's storage (nil for nil), e.g. a layer without bias.
func withOptionalPointer<Result>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) throws -> Result) rethrows -> Result {
    guard let array else { return try body(nil) }
    return try array.withUnsafeBufferPointer { try body($0.baseAddress) }
}
