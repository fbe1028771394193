/// Stride-1 convolutions with Winograd's minimal filtering F(4, 3): four outputs of three taps from six
/// products instead of twelve.
///
/// The taps are taken three at a time ("chunks"); for a group of outputs (t, t + d, t + 2d, t + 3d) (d the
/// dilation) and chunk c, the six inputs x_m = x[t + (3c + m) d - pad] are transformed to u = B^T x and the
/// taps g to v = G g (Lavin and Gray's matrices for the points 0, +-1, +-2 and infinity); with
/// `m_j = sum over c and input channels of u_j v_j` the four outputs are A^T m. Each m_j is one matrix
/// product over all chunks at once, so a kernel of K taps costs 1.5 * floor(K / 3) + (K mod 3) products per
/// output instead of K (11 -> 6.5, 7 -> 4, 3 -> 1.5); the leftover taps are multiplied directly.
///
/// Numerics: B^T and A^T hold small integers and G's sixths and twenty-fourths are rounded once, from double;
/// the output transform's factors up to 8 amplify the products' rounding, which costs about 3 dB against
/// F(2, 3) (`rvc-ios parity`, full-size v2-40k: worst stage 117.9 dB chained, was 120.5) for a quarter fewer
/// multiplies; points 0, +-1, +-2 keep it well above the 110 dB the benchmark asks of the audio.
struct WinogradWeights: Sendable {
    static let points = 6
    /// Outputs per Winograd tile: (t, t + d, t + 2d, t + 3d).
    static let tileOutputs = 4

    let inChannels: Int
    let outChannels: Int
    let kernelSize: Int
    let chunks: Int
    /// `points` matrices of O x (chunks * I): row o holds the transformed taps G g of every chunk.
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
                    let values = [g0 / 4, -(g0 + g1 + g2) / 6, -(g0 - g1 + g2) / 6,
                                  (g0 + 2 * g1 + 4 * g2) / 24, (g0 - 2 * g1 + 4 * g2) / 24, g2]
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
    /// One sgemm per Winograd point j: `products_j (rows x O) = inputs_j (rows x inner) * weights_j^T`, with
    /// `weights_j` an O x inner row-major matrix; the j-th matrices lie one after another in each buffer.
    static func winogradProducts(points: Int, rows: Int, inner: Int, outChannels: Int, inputs: UnsafePointer<Float>,
                                 weights: UnsafePointer<Float>, into products: UnsafeMutablePointer<Float>) {
        for j in 0..<points {
            BLAS.sgemm(transposeB: true, m: rows, n: outChannels, k: inner,
                       a: inputs + j * rows * inner, lda: inner,
                       b: weights + j * outChannels * inner, ldb: inner,
                       beta: 0, c: products + j * rows * outChannels, ldc: outChannels)
        }
    }

    /// `output (+)= conv1d(activation(input))` for stride 1 with F(4, 3) (see `WinogradWeights`).
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
        // Groups (t, t + d, t + 2d, t + 3d) live in blocks of 4d rows; tiles hold whole blocks.
        let tileOutputs = WinogradWeights.tileOutputs
        let block = tileOutputs * d
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
                            (tileRows + span) * inChannels + points * (tileRows / tileOutputs) * (width + outChannels)
                        }) { rows, scratch in
                let blocks = (rows.count + block - 1) / block
                let groups = blocks * d
                let frames = scratch
                let transformedInput = frames + (blocks * block + span) * inChannels
                let products = transformedInput + points * groups * width
                copyFrames(input, from: rows.lowerBound - geometry.padLeft, count: blocks * block + span,
                           slope: inputSlope, into: frames)

                // u_j for every group and chunk.
                for group in 0..<groups {
                    let offset = (group / d) * block + group % d  // t - rows.lowerBound
                    for c in 0..<weights.chunks {
                        Vectorized.winogradInput(frames + (offset + 3 * c * d) * inChannels, step: d * inChannels,
                                                 into: transformedInput + group * width + c * inChannels,
                                                 stride: groups * width, count: inChannels)
                    }
                }
                winogradProducts(points: points, rows: groups, inner: width, outChannels: outChannels,
                                 inputs: transformedInput, weights: transformed, into: products)
                // y_{t + q d} = (A^T m)_q, plus bias, onto or over the output.
                let stride = groups * outChannels
                for group in 0..<groups {
                    let t = rows.lowerBound + (group / d) * block + group % d
                    for q in 0..<tileOutputs {
                        let row = t + q * d
                        guard row < rows.upperBound else { continue }
                        Vectorized.winogradOutput(products + group * outChannels, stride: stride, output: q,
                                                  offset: offsets, accumulate: accumulate,
                                                  into: output.base + row * output.rowStride, count: outChannels)
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
