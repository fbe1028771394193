/// Upstream's 48 Hz high-pass (`signal.filtfilt(bh, ah, audio)` with `bh, ah = signal.butter(N=5, Wn=48,
/// btype="high", fs=16000)`, rvc 0.3.5 pipeline.py L24 and L318), reproduced as scipy computes it so the
/// filtered signal is bit-identical: the odd extension of 18 samples in float32 (the input's dtype), then
/// `lfilter` forwards and backwards in float64 in scipy's transposed direct form II evaluation order.
public enum HighPass {
    /// `butter(5, 48, "high", fs=16000)`, exactly (the hex literals of `rvc_ios_tools/pipeline/audio.py`).
    static let b: [Double] = [
        0x1.f09eae82f17f2p-1, -0x1.36632d11d6ef7p+2, 0x1.36632d11d6ef7p+3,
        -0x1.36632d11d6ef7p+3, 0x1.36632d11d6ef7p+2, -0x1.f09eae82f17f2p-1,
    ]
    static let a: [Double] = [
        1.0, -0x1.3c189b160d9bbp+2, 0x1.38406b02c5ae9p+3,
        -0x1.347726c291cb2p+3, 0x1.30bc870194e75p+2, -0x1.e1b3a34ba432ap-1,
    ]
    /// `scipy.signal.lfilter_zi(b, a)`, exactly: the steady state of a unit step, scaled by the first sample.
    static let zi: [Double] = [
        -0x1.f09ea8f571c2ap-1, 0x1.f09ea90b1f209p+1, -0x1.7476fed844eecp+2,
        0x1.f09ea9352b476p+1, -0x1.f09ea94990411p-1,
    ]
    /// filtfilt's default edge: 3 * max(len(a), len(b)) samples of odd extension at each end.
    public static let padding = 3 * max(a.count, b.count)

    /// The filtered signal (float64, as upstream's `audio` is from here on). Needs more than 18 samples.
    public static func filtfilt(_ x: [Float]) throws -> [Double] {
        let n = x.count
        guard n > padding else { throw ConversionError.audioTooShort(samples: n, minimum: padding + 1) }
        // Odd extension in float32: left = 2*x[0] - x[18:0:-1], right = 2*x[-1] - x[-2:-20:-1].
        var extended = [Float]()
        extended.reserveCapacity(n + 2 * padding)
        let first = 2 * x[0], last = 2 * x[n - 1]
        for i in stride(from: padding, through: 1, by: -1) { extended.append(first - x[i]) }
        extended.append(contentsOf: x)
        for i in 0..<padding { extended.append(last - x[n - 2 - i]) }

        var y = lfilter(extended.map(Double.init), initial: Double(extended[0]))
        y.reverse()
        y = lfilter(y, initial: y[0])
        y.reverse()
        return Array(y[padding..<(padding + n)])
    }

    /// scipy's `lfilter(b, a, x, zi=zi * initial)` (a[0] = 1): per sample
    /// `y = z0 + b0 x; z_i = (z_{i+1} + x b_{i+1}) - y a_{i+1}; z4 = x b5 - y a5`, in that order.
    static func lfilter(_ x: [Double], initial: Double) -> [Double] {
        let (b0, b1, b2, b3, b4, b5) = (b[0], b[1], b[2], b[3], b[4], b[5])
        let (a1, a2, a3, a4, a5) = (a[1], a[2], a[3], a[4], a[5])
        var (z0, z1, z2, z3, z4) = (zi[0] * initial, zi[1] * initial, zi[2] * initial, zi[3] * initial, zi[4] * initial)
        var y = [Double](repeating: 0, count: x.count)
        for i in 0..<x.count {
            let xi = x[i]
            let yi = z0 + b0 * xi
            z0 = (z1 + xi * b1) - yi * a1
            z1 = (z2 + xi * b2) - yi * a2
            z2 = (z3 + xi * b3) - yi * a3
            z3 = (z4 + xi * b4) - yi * a4
            z4 = xi * b5 - yi * a5
            y[i] = yi
        }
        return y
    }
}
