/// 3x3, stride-1, padding-1 image convolutions with Winograd's F(2x2, 3x3): each 2x2 block of outputs from
/// 16 products per (input, output) channel pair instead of 36.
///
/// For a 2x2 output block at (h, w) the 4x4 input patch d = x[h-1 ..< h+3, w-1 ..< w+3] (zero outside the
/// image) is transformed to V = B^T d B and the 3x3 taps g to U = G g G^T (Lavin and Gray's matrices for the
/// points 0, +-1 and infinity); with M_j = sum over input channels of U_j V_j, the outputs are A^T M A. Each
/// M_j, over a tile of blocks and all input channels at once, is one matrix product: 16 products of
/// (blocks x I) by (I x O). The transforms only add and subtract (G's halves are exact), so the rounding is
/// close to a direct sum's.
struct Winograd2dWeights: Sendable {
    static let points = 16

    let inChannels: Int
    let outChannels: Int
    /// 16 matrices of O x I: entry j of G g G^T for every (o, i).
    let transformed: [Float]

    /// From the exported (O, 3, 3, I) weight.
    init(weightOHWI weight: [Float], outChannels: Int, inChannels: Int) {
        precondition(weight.count == outChannels * 9 * inChannels)
        var transformed = [Float](repeating: 0, count: Self.points * outChannels * inChannels)
        let plane = outChannels * inChannels
        transformed.withUnsafeMutableBufferPointer { target in
            weight.withUnsafeBufferPointer { weight in
                // Output channels split among the cores: loading RMVPE transforms about 5 million tap sets.
                let target = target.baseAddress!, weight = weight.baseAddress!
                let share = (outChannels + ParallelWork.workerCount - 1) / ParallelWork.workerCount
                ParallelWork.run(workers: ParallelWork.workerCount) { worker, _ in
                for o in (worker * share)..<min(outChannels, (worker + 1) * share) {
                    for i in 0..<inChannels {
                        let base = o * 9 * inChannels + i
                        func g(_ kh: Int, _ kw: Int) -> Double { Double(weight[base + (kh * 3 + kw) * inChannels]) }
                        // G g (4 x 3): rows g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2 over kh; then the same
                        // combination over kw gives (G g) G^T.
                        for r in 0..<4 {
                            func row(_ kw: Int) -> Double {
                                let (a, b, c) = (g(0, kw), g(1, kw), g(2, kw))
                                switch r {
                                case 0: return a
                                case 1: return (a + b + c) / 2
                                case 2: return (a - b + c) / 2
                                default: return c
                                }
                            }
                            let (a, b, c) = (row(0), row(1), row(2))
                            let values = (a, (a + b + c) / 2, (a - b + c) / 2, c)
                            let offset = (r * 4) * plane + o * inChannels + i
                            target[offset] = Float(values.0)
                            target[offset + plane] = Float(values.1)
                            target[offset + 2 * plane] = Float(values.2)
                            target[offset + 3 * plane] = Float(values.3)
                        }
                    }
                }
                }
            }
        }
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.transformed = transformed
    }
}

extension Convolution {
    /// `output = conv2d(input) (+ bias)` for one (H, W, I) channels-last image, 3x3 kernel, padding 1.
    static func winogradConv2d(input: UnsafePointer<Float>, height: Int, width: Int, weights: Winograd2dWeights,
                               bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>) {
        let (inChannels, outChannels) = (weights.inChannels, weights.outChannels)
        let (blockRows, blockColumns) = ((height + 1) / 2, (width + 1) / 2)
        let blocks = blockRows * blockColumns
        let points = Winograd2dWeights.points
        let zeros = [Float](repeating: 0, count: inChannels)
        let biasOrZero = bias.map { Array(UnsafeBufferPointer(start: $0, count: outChannels)) }
            ?? [Float](repeating: 0, count: outChannels)
        zeros.withUnsafeBufferPointer { zeros in
        biasOrZero.withUnsafeBufferPointer { offsets in
        weights.transformed.withUnsafeBufferPointer { transformed in
            let zeros = zeros.baseAddress!
            let offsets = offsets.baseAddress!
            let transformed = transformed.baseAddress!
            forEachTile(rows: blocks, rowFloats: points * (inChannels + outChannels)) { tile, scratch in
                let count = tile.count
                let transformedInput = scratch  // points matrices of count x I
                let products = scratch + points * count * inChannels  // points matrices of count x O
                // V = B^T d B for every block of the tile, channels innermost.
                withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: 16) { patch in
                    let patch = patch.baseAddress!
                    for (n, block) in tile.enumerated() {
                        let (h, w) = (2 * (block / blockColumns) - 1, 2 * (block % blockColumns) - 1)
                        for r in 0..<4 {
                            let inside = h + r >= 0 && h + r < height
                            for s in 0..<4 {
                                patch[r * 4 + s] = inside && w + s >= 0 && w + s < width
                                    ? input + ((h + r) * width + w + s) * inChannels : zeros
                            }
                        }
                        Vectorized.winograd2dInput(patch, into: transformedInput + n * inChannels,
                                                   stride: count * inChannels, count: inChannels)
                    }
                }
                winogradProducts(points: points, rows: count, inner: inChannels, outChannels: outChannels,
                                 inputs: transformedInput, weights: transformed, into: products)
                // Y = A^T M A, plus bias, into the 2x2 outputs that lie inside the image.
                for (n, block) in tile.enumerated() {
                    let (h, w) = (2 * (block / blockColumns), 2 * (block % blockColumns))
                    func target(_ q: Int) -> UnsafeMutablePointer<Float>? {
                        h + q / 2 < height && w + q % 2 < width ? output + ((h + q / 2) * width + w + q % 2) * outChannels : nil
                    }
                    Vectorized.winograd2dOutput(products + n * outChannels, stride: count * outChannels,
                                                offset: offsets, into: (target(0), target(1), target(2), target(3)),
                                                count: outChannels)
                }
            }
        }}}
    }
}

extension Vectorized {
    /// F(2x2, 3x3)'s input transform V = B^T d B (B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]) of a 4x4
    /// patch (`patch[r * 4 + s]` points at pixel (r, s)'s channels), the 16 results written `stride` apart.
    static func winograd2dInput(_ patch: UnsafePointer<UnsafePointer<Float>>, into target: UnsafeMutablePointer<Float>,
                                stride: Int, count: Int) {
        var i = 0
        while i < count {
            let width = min(lanes, count - i)
            @inline(__always) func d(_ p: Int) -> Vector {
                width == lanes ? load(patch[p] + i) : partial(patch[p] + i, width)
            }
            // Rows over r: t = B^T d, one column s at a time.
            @inline(__always) func column(_ s: Int) -> (Vector, Vector, Vector, Vector) {
                let (d0, d1, d2, d3) = (d(s), d(4 + s), d(8 + s), d(12 + s))
                return (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
            }
            let c0 = column(0), c1 = column(1), c2 = column(2), c3 = column(3)
            @inline(__always) func emit(_ r: Int, _ t0: Vector, _ t1: Vector, _ t2: Vector, _ t3: Vector) {
                let values = (t0 - t2, t1 + t2, t2 - t1, t1 - t3)
                put(values.0, target + (4 * r) * stride + i, width)
                put(values.1, target + (4 * r + 1) * stride + i, width)
                put(values.2, target + (4 * r + 2) * stride + i, width)
                put(values.3, target + (4 * r + 3) * stride + i, width)
            }
            emit(0, c0.0, c1.0, c2.0, c3.0)
            emit(1, c0.1, c1.1, c2.1, c3.1)
            emit(2, c0.2, c1.2, c2.2, c3.2)
            emit(3, c0.3, c1.3, c2.3, c3.3)
            i += width
        }
    }

    /// F(2x2, 3x3)'s output transform Y = A^T M A (A^T = [1 1 1 0; 0 1 -1 -1]) of the 16 products `stride`
    /// apart, plus `offset`, written to the 2x2 outputs (row-major) that are not nil.
    static func winograd2dOutput(
        _ products: UnsafePointer<Float>, stride: Int, offset: UnsafePointer<Float>,
        into targets: (UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?,
                       UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?),
        count: Int
    ) {
        var i = 0
        while i < count {
            let width = min(lanes, count - i)
            @inline(__always) func m(_ j: Int) -> Vector {
                width == lanes ? load(products + j * stride + i) : partial(products + j * stride + i, width)
            }
            // Rows: t = A^T M (2 x 4), one column s at a time.
            @inline(__always) func column(_ s: Int) -> (Vector, Vector) {
                let (m0, m1, m2, m3) = (m(s), m(4 + s), m(8 + s), m(12 + s))
                return (m0 + m1 + m2, m1 - m2 - m3)
            }
            let c0 = column(0), c1 = column(1), c2 = column(2), c3 = column(3)
            let bias = width == lanes ? load(offset + i) : partial(offset + i, width)
            if let target = targets.0 { put(c0.0 + c1.0 + c2.0 + bias, target + i, width) }
            if let target = targets.1 { put(c1.0 - c2.0 - c3.0 + bias, target + i, width) }
            if let target = targets.2 { put(c0.1 + c1.1 + c2.1 + bias, target + i, width) }
            if let target = targets.3 { put(c1.1 - c2.1 - c3.1 + bias, target + i, width) }
            i += width
        }
    }

    /// The first `width` (< lanes) floats at `pointer`, zeros after.
    @inline(__always)
    private static func partial(_ pointer: UnsafePointer<Float>, _ width: Int) -> Vector {
        var vector = Vector()
        for lane in 0..<width { vector[lane] = pointer[lane] }
        return vector
    }

    /// Stores `width` lanes of `vector` (all of them when `width == lanes`).
    @inline(__always)
    private static func put(_ vector: Vector, _ pointer: UnsafeMutablePointer<Float>, _ width: Int) {
        if width == lanes {
            store(vector, pointer)
        } else {
            for lane in 0..<width { pointer[lane] = vector[lane] }
        }
    }
}
