/// Inner loops over float rows written with explicit SIMD vectors.
///
/// The compiler cannot vectorise these loops by itself: source and target are pointers into the same
/// scratch buffer, so it must assume they overlap. Eight lanes at a time (two SSE or one AVX operation),
/// then a scalar tail.
enum Vectorized {
    typealias Vector = SIMD8<Float>
    static let lanes = Vector.scalarCount

    @inline(__always)
    static func load(_ pointer: UnsafePointer<Float>) -> Vector {
        UnsafeRawPointer(pointer).loadUnaligned(as: Vector.self)
    }

    @inline(__always)
    static func store(_ vector: Vector, _ pointer: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(pointer).storeBytes(of: vector, as: Vector.self)
    }

    /// target = source, or leaky_relu(source, slope).
    @inline(__always)
    static func copy(_ source: UnsafePointer<Float>, to target: UnsafeMutablePointer<Float>, count: Int, slope: Float?) {
        guard let slope else {
            target.update(from: source, count: count)
            return
        }
        var i = 0
        while i + lanes <= count {
            let v = load(source + i)
            store(v.replacing(with: v * slope, where: .!(v .> 0)), target + i)
            i += lanes
        }
        while i < count {
            target[i] = leakyReLU(source[i], slope: slope)
            i += 1
        }
    }

    /// F(4, 3)'s input transform B^T x of six rows `step` floats apart (Lavin's points 0, +-1, +-2, inf),
    /// the six results written `stride` apart.
    @inline(__always)
    static func winogradInput(_ x: UnsafePointer<Float>, step: Int, into u: UnsafeMutablePointer<Float>,
                              stride: Int, count: Int) {
        var i = 0
        while i + lanes <= count {
            let (x0, x1, x2) = (load(x + i), load(x + step + i), load(x + 2 * step + i))
            let (x3, x4, x5) = (load(x + 3 * step + i), load(x + 4 * step + i), load(x + 5 * step + i))
            let (a, b) = (x4 - 4 * x2, x3 - 4 * x1)
            let (c, e) = (x4 - x2, 2 * (x3 - x1))
            store(4 * x0 - 5 * x2 + x4, u + i)
            store(a + b, u + stride + i)
            store(a - b, u + 2 * stride + i)
            store(c + e, u + 3 * stride + i)
            store(c - e, u + 4 * stride + i)
            store(4 * x1 - 5 * x3 + x5, u + 5 * stride + i)
            i += lanes
        }
        while i < count {
            let (x0, x1, x2) = (x[i], x[step + i], x[2 * step + i])
            let (x3, x4, x5) = (x[3 * step + i], x[4 * step + i], x[5 * step + i])
            let (a, b) = (x4 - 4 * x2, x3 - 4 * x1)
            let (c, e) = (x4 - x2, 2 * (x3 - x1))
            u[i] = 4 * x0 - 5 * x2 + x4
            u[stride + i] = a + b
            u[2 * stride + i] = a - b
            u[3 * stride + i] = c + e
            u[4 * stride + i] = c - e
            u[5 * stride + i] = 4 * x1 - 5 * x3 + x5
            i += 1
        }
    }

    /// F(4, 3)'s output transform, row `output` of A^T m from products m_j (`stride` apart):
    /// m0 + m1 + m2 + m3 + m4, m1 - m2 + 2 (m3 - m4), m1 + m2 + 4 (m3 + m4), m1 - m2 + 8 (m3 - m4) + m5;
    /// `line = (accumulate ? line : 0) + offset + y`.
    @inline(__always)
    static func winogradOutput(_ m: UnsafePointer<Float>, stride: Int, output: Int, offset: UnsafePointer<Float>,
                               accumulate: Bool, into line: UnsafeMutablePointer<Float>, count: Int) {
        @inline(__always) func combine<V: SIMD>(_ m0: V, _ m1: V, _ m2: V, _ m3: V, _ m4: V, _ m5: V) -> V
            where V.Scalar == Float {
            switch output {
            case 0: return m0 + m1 + m2 + m3 + m4
            case 1: return (m1 - m2) + 2 * (m3 - m4)
            case 2: return (m1 + m2) + 4 * (m3 + m4)
            default: return (m1 - m2) + 8 * (m3 - m4) + m5
            }
        }
        var i = 0
        while i + lanes <= count {
            let y = combine(load(m + i), load(m + stride + i), load(m + 2 * stride + i), load(m + 3 * stride + i),
                            load(m + 4 * stride + i), load(m + 5 * stride + i))
            let base = accumulate ? load(line + i) + load(offset + i) : load(offset + i)
            store(base + y, line + i)
            i += lanes
        }
        while i < count {
            // The tail through two-lane vectors (lane 0 kept), so the combination is written once.
            let y = combine(SIMD2(repeating: m[i]), SIMD2(repeating: m[stride + i]), SIMD2(repeating: m[2 * stride + i]),
                            SIMD2(repeating: m[3 * stride + i]), SIMD2(repeating: m[4 * stride + i]),
                            SIMD2(repeating: m[5 * stride + i]))[0]
            line[i] = (accumulate ? line[i] + offset[i] : offset[i]) + y
            i += 1
        }
    }
}
