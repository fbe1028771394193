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

    /// F(2, 3)'s input transform of four rows: (x0 - x2, x1 + x2, x2 - x1, x1 - x3), written `stride` apart.
    @inline(__always)
    static func winogradInput(_ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>, _ x2: UnsafePointer<Float>,
                              _ x3: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>, stride: Int, count: Int) {
        var i = 0
        while i + lanes <= count {
            let (a, b, c, d) = (load(x0 + i), load(x1 + i), load(x2 + i), load(x3 + i))
            store(a - c, u + i)
            store(b + c, u + stride + i)
            store(c - b, u + 2 * stride + i)
            store(b - d, u + 3 * stride + i)
            i += lanes
        }
        while i < count {
            u[i] = x0[i] - x2[i]
            u[stride + i] = x1[i] + x2[i]
            u[2 * stride + i] = x2[i] - x1[i]
            u[3 * stride + i] = x1[i] - x3[i]
            i += 1
        }
    }

    /// F(2, 3)'s output transform from products m_j (`stride` apart): first output m0 + m1 + m2, second
    /// m1 - m2 - m3; `line = (accumulate ? line : 0) + offset + y`.
    @inline(__always)
    static func winogradOutput(_ m: UnsafePointer<Float>, stride: Int, second: Bool, offset: UnsafePointer<Float>,
                               accumulate: Bool, into line: UnsafeMutablePointer<Float>, count: Int) {
        let (m0, m1, m2, m3) = (m, m + stride, m + 2 * stride, m + 3 * stride)
        var i = 0
        while i + lanes <= count {
            let y = second ? load(m1 + i) - load(m2 + i) - load(m3 + i) : load(m0 + i) + load(m1 + i) + load(m2 + i)
            let base = accumulate ? load(line + i) + load(offset + i) : load(offset + i)
            store(base + y, line + i)
            i += lanes
        }
        while i < count {
            let y = second ? m1[i] - m2[i] - m3[i] : m0[i] + m1[i] + m2[i]
            line[i] = (accumulate ? line[i] + offset[i] : offset[i]) + y
            i += 1
        }
    }
}
