/// Stride-1 convolutions with Winograd's minimal filtering F(2, 3): two outputs of three taps from four
/// products instead of six.
///
/// The taps are taken three at a time ("chunks"); for a pair of outputs (t, t + d) (d the dilation) and
/// chunk c, the four inputs x_m = x[t + (3c + m) d - pad] are transformed to
/// `u = (x0 - x2, x1 + x2, x2 - x1, x1 - x3)`, the taps g to `v = (g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2)`,
/// and with `m_j = sum over c and input channels of u_j v_j` the outputs are `y_t = m0 + m1 + m2` and
/// `y_{t+d} = m1 - m2 - m3`. Each m_j is one matrix product over all chunks at once, so a kernel of K taps
/// costs 2 * floor(K / 3) + (K mod 3) products per output instead of K (11 -> 8, 7 -> 5, 3 -> 2); the
/// leftover taps are multiplied directly. The transforms only add and halve, so results stay within a few
/// float32 roundings of the direct sum.
struct WinogradWeights: Sendable {
    static let points = 4

    let inChannels: Int
    let outChannels: Int
    let kernelSize: Int
    let chunks: Int
    /// `points` matrices of O x (chunks * I): row o holds the transformed taps of every chunk.
    let transformed: [Float]
    /// O x (leftoverTaps * I): taps 3 * chunks ..< K, applied directly.
    let leftover: [Float]

    var leftoverTaps: Int { kernelSize - 3 * chunks }

    /// From the exported (O, K, I) weight; needs K >= 3.
    init(weightOKI weight: [Float], outChannels: Int, kernelSize: Int, inChannels: Int) {
        precondition(kernelSize >= 3 && weight.count == outChannels * kernelSize * inChannels)
        let chunks = kernelSize / 3
        let width = chunks * inChannels
        var transformed = [Float](repeating: 0, count: Self.points * outChannels * width)
        let leftoverTaps = kernelSize - 3 * chunks
        var leftover = [Float](repeating: 0, count: outChannels * leftoverTaps * inChannels)
        for o in 0..<outChannels {
            for i in 0..<inChannels {
                func tap(_ k: Int) -> Double { Double(weight[(o * kernelSize + k) * inChannels + i]) }
                for c in 0..<chunks {
                    let (g0, g1, g2) = (tap(3 * c), tap(3 * c + 1), tap(3 * c + 2))
                    let values = [g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2]
                    for (j, value) in values.enumerated() {
                        transformed[(j * outChannels + o) * width + c * inChannels + i] = Float(value)
                    }
                }
                for l in 0..<leftoverTaps {
                    leftover[(o * leftoverTaps + l) * inChannels + i] = Float(tap(3 * chunks + l))
                }
            }
        }
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.chunks = chunks
        self.transformed = transformed
        self.leftover = leftover
    }
}

extension Convolution {
    /// `output (+)= conv1d(activation(input))` for stride 1 with F(2, 3) (see `WinogradWeights`).
    static func winogradConv1d(
        input: MatrixView,
        weights: WinogradWeights,
        bias: UnsafePointer<Float>?,
        geometry: ConvolutionGeometry,
        inputSlope: Float? = nil,
        accumulate: Bool = false,
        output: MutableMatrixView
    ) {
        precondition(geometry.stride == 1 && geometry.kernelSize == weights.kernelSize)
        precondition(input.columns == weights.inChannels && output.columns == weights.outChannels)
        precondition(output.rows == geometry.outputFrames(inputFrames: input.rows), "conv1d output frame count")
        let (inChannels, outChannels, d) = (weights.inChannels, weights.outChannels, geometry.dilation)
        let span = d * (geometry.kernelSize - 1)
        let width = weights.chunks * inChannels
        let points = WinogradWeights.points
        // Pairs (t, t + d) live in blocks of 2d rows; tiles hold whole blocks.
        let block = 2 * d
        let biasOrZero = bias.map { Array(UnsafeBufferPointer(start: $0, count: outChannels)) }
            ?? [Float](repeating: 0, count: outChannels)
        biasOrZero.withUnsafeBufferPointer { offsets in
        weights.transformed.withUnsafeBufferPointer { transformed in
        weights.leftover.withUnsafeBufferPointer { leftover in
            let offsets = offsets.baseAddress!
            let transformed = transformed.baseAddress!
            let leftover = leftover.baseAddress
            forEachTile(rows: output.rows, rowFloats: 2 * width + 2 * outChannels + inChannels, alignment: block,
                        scratchFloats: { tileRows in
                            (tileRows + span) * inChannels + points * (tileRows / 2) * (width + outChannels)
                        }) { rows, scratch in
                let blocks = (rows.count + block - 1) / block
                let pairs = blocks * d
                let frames = scratch
                let transformedInput = frames + (blocks * block + span) * inChannels
                let products = transformedInput + points * pairs * width
                copyFrames(input, from: rows.lowerBound - geometry.padLeft, count: blocks * block + span,
                           slope: inputSlope, into: frames)

                // u_j for every pair and chunk.
                for pair in 0..<pairs {
                    let offset = (pair / d) * block + pair % d  // t - rows.lowerBound
                    for c in 0..<weights.chunks {
                        let x0 = frames + (offset + 3 * c * d) * inChannels
                        let (x1, x2, x3) = (x0 + d * inChannels, x0 + 2 * d * inChannels, x0 + 3 * d * inChannels)
                        Vectorized.winogradInput(x0, x1, x2, x3, into: transformedInput + pair * width + c * inChannels,
                                                 stride: pairs * width, count: inChannels)
                    }
                }
                for j in 0..<points {
                    BLAS.sgemm(transposeB: true, m: pairs, n: outChannels, k: width,
                               a: transformedInput + j * pairs * width, lda: width,
                               b: transformed + j * outChannels * width, ldb: width,
                               beta: 0, c: products + j * pairs * outChannels, ldc: outChannels)
                }
                // y_t = m0 + m1 + m2, y_{t+d} = m1 - m2 - m3, plus bias, onto or over the output.
                let stride = pairs * outChannels
                for pair in 0..<pairs {
                    let t = rows.lowerBound + (pair / d) * block + pair % d
                    let m0 = products + pair * outChannels
                    for second in [false, true] {
                        let row = second ? t + d : t
                        guard row < rows.upperBound else { continue }
                        Vectorized.winogradOutput(m0, stride: stride, second: second, offset: offsets,
                                                  accumulate: accumulate, into: output.base + row * output.rowStride,
                                                  count: outChannels)
                    }
                }
                // Leftover taps, directly on shifted views of the copied frames.
                for l in 0..<weights.leftoverTaps {
                    guard let leftover else { break }
                    BLAS.sgemm(transposeB: true, m: rows.count, n: outChannels, k: inChannels,
                               a: frames + (3 * weights.chunks + l) * d * inChannels, lda: inChannels,
                               b: leftover + l * inChannels, ldb: weights.leftoverTaps * inChannels,
                               beta: 1, c: output.base + rows.lowerBound * output.rowStride, ldc: output.rowStride)
                }
            }
        }}}
    }
}
