import Foundation

/// GELU and the softmax's exponential as multiply-adds on SIMD vectors, the same approximations the MLX
/// reference uses (`rvc_ios_tools/hubert/model.py`): the C library's `erff` and `expf` are scalar calls, and
/// the content encoder makes about 150 M GELUs and 320 M exponentials on 30 s of audio.
enum PolynomialActivations {
    typealias Vector = SIMD8<Float>

    /// Eigen's / XLA's float32 erf on [-4, 4]: x P(x^2) / Q(x^2), within 4.5e-7 of erf (outside, erf is +-1).
    static let erfNumerator: [Float] = [-1.60960333262415e-02, -2.95459980854025e-03, -7.34990630326855e-04,
                                        -5.69250639462346e-05, -2.10102402082508e-06, 2.77068142495902e-08,
                                        -2.72614225801306e-10]
    static let erfDenominator: [Float] = [-1.42647390514189e-02, -7.37332916720468e-03, -1.68282697438203e-03,
                                          -2.13374055278905e-04, -1.45660718464996e-05]

    @inline(__always)
    static func horner(_ x: Vector, _ coefficients: [Float]) -> Vector {
        var result = x * coefficients[coefficients.count - 1] + coefficients[coefficients.count - 2]
        for i in stride(from: coefficients.count - 3, through: 0, by: -1) { result = result * x + coefficients[i] }
        return result
    }

    @inline(__always)
    static func gelu(_ x: Vector) -> Vector {
        let z = (x * 0.70710678118654752).clamped(lowerBound: Vector(repeating: -4), upperBound: Vector(repeating: 4))
        let z2 = z * z
        let erf = z * horner(z2, erfNumerator) / horner(z2, erfDenominator)
        return 0.5 * x * (1 + erf)
    }

    /// e^x for x <= 0: 2^n e^r, n = round(x / ln 2), r = x - n ln 2 (ln 2 in two parts), e^r by its series to r^8.
    /// Adding 1.5 * 2^23 to a float of magnitude below 2^22 rounds it to an integer (to nearest, ties to even)
    /// held in the low mantissa bits: the rounding and the integer without a per-lane conversion.
    static let roundingMagic: Float = 12_582_912
    static let roundingMagicBits: Int32 = 0x4B40_0000

    @inline(__always)
    static func exp(_ x: Vector) -> Vector {
        let clamped = x.replacing(with: -87, where: x .< -87)
        let shifted = clamped * 1.4426950408889634 + roundingMagic
        let n = shifted - roundingMagic
        let r = clamped - n * 0.693145751953125 - n * 1.428606765330187e-06
        var series = Vector(repeating: 1.0 / 40320)
        series = series * r + (1.0 / 5040)
        series = series * r + (1.0 / 720)
        series = series * r + (1.0 / 120)
        series = series * r + (1.0 / 24)
        series = series * r + (1.0 / 6)
        series = series * r + 0.5
        series = series * r + 1
        series = series * r + 1
        let exponent = ((unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- roundingMagicBits) &+ 127) &<< 23
        return series * unsafeBitCast(exponent, to: Vector.self)
    }

    static func scalarGELU(_ x: Float) -> Float { gelu(Vector(repeating: x))[0] }
    static func scalarExp(_ x: Float) -> Float { exp(Vector(repeating: x))[0] }

    /// GELU over `count` values in place.
    static func applyGELU(_ values: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + Vector.scalarCount <= count {
            let v = UnsafeRawPointer(values + i).loadUnaligned(as: Vector.self)
            UnsafeMutableRawPointer(values + i).storeBytes(of: gelu(v), as: Vector.self)
            i += Vector.scalarCount
        }
        while i < count {
            values[i] = scalarGELU(values[i])
            i += 1
        }
    }

    /// Row-wise softmax over the last axis, max-subtracted as torch does.
    static func softmaxRows(_ values: UnsafeMutablePointer<Float>, rows: Int, columns: Int, rowStride: Int) {
        let lanes = Vector.scalarCount
        let whole = columns - columns % lanes
        for row in 0..<rows {
            let line = values + row * rowStride
            var maxima = Vector(repeating: -.infinity)
            for c in stride(from: 0, to: whole, by: lanes) {
                maxima = pointwiseMax(maxima, UnsafeRawPointer(line + c).loadUnaligned(as: Vector.self))
            }
            var maximum = maxima.max()
            for c in whole..<columns { maximum = max(maximum, line[c]) }
            var sums = Vector.zero
            for c in stride(from: 0, to: whole, by: lanes) {
                let e = exp(UnsafeRawPointer(line + c).loadUnaligned(as: Vector.self) - maximum)
                UnsafeMutableRawPointer(line + c).storeBytes(of: e, as: Vector.self)
                sums += e
            }
            var sum = sums.sum()
            for c in whole..<columns {
                line[c] = scalarExp(line[c] - maximum)
                sum += line[c]
            }
            let inverse = 1 / sum
            for c in stride(from: 0, to: whole, by: lanes) {
                let v = UnsafeRawPointer(line + c).loadUnaligned(as: Vector.self)
                UnsafeMutableRawPointer(line + c).storeBytes(of: v * inverse, as: Vector.self)
            }
            for c in whole..<columns { line[c] *= inverse }
        }
    }
}
