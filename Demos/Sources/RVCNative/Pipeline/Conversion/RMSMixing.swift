import Foundation

/// Upstream's `change_rms` (rvc 0.3.5 pipeline.py L43-62): the output's loudness pulled towards the input's,
/// `output * (rms_input / rms_output) ^ (1 - rate)`, both envelopes at 2 points a second as librosa >= 0.10
/// computes them (centred frames of half a second, zero padding, float32) and stretched to every output
/// sample by torch's `F.interpolate(mode="linear", align_corners=False)` in float32.
public enum RMSMixing {
    /// `source`: the filtered, unpadded 16 kHz input; `output` at `outputRate`; returns the mixed output.
    public static func changeRMS(source: [Double], sourceRate: Int, output: [Float], outputRate: Int,
                                 rate: Double) -> [Float] {
        let rmsSource = interpolateLinear(frameRMS(source.map { Float($0) }, frameLength: sourceRate / 2 * 2,
                                                   hopLength: sourceRate / 2), count: output.count)
        let rmsOutput = interpolateLinear(frameRMS(output, frameLength: outputRate / 2 * 2, hopLength: outputRate / 2),
                                          count: output.count)
        // torch.tensor(1 - rate) and torch.tensor(rate - 1): float32 0-dim tensors of the float64 differences.
        let sourcePower = Float(1 - rate), outputPower = Float(rate - 1)
        let floor = Float(1e-6)
        var mixed = output
        for i in 0..<mixed.count {
            let gain = powf(rmsSource[i], sourcePower) * powf(max(rmsOutput[i], floor), outputPower)
            mixed[i] *= gain
        }
        return mixed
    }

    /// `librosa.feature.rms(y=signal, frame_length=..., hop_length=...)` (center, zero padding): frame k covers
    /// `padded[k * hop ..< k * hop + frame_length]`; power is numpy's float32 mean of the squares (pairwise sum).
    public static func frameRMS(_ signal: [Float], frameLength: Int, hopLength: Int) -> [Float] {
        let half = frameLength / 2
        var padded = [Float](repeating: 0, count: signal.count + 2 * half)
        for (i, value) in signal.enumerated() { padded[half + i] = value * value }
        let frames = (padded.count - frameLength) / hopLength + 1
        return padded.withUnsafeBufferPointer { squares in
            (0..<frames).map { k in
                let power = pairwiseSum(UnsafeBufferPointer(rebasing: squares[(k * hopLength)..<(k * hopLength + frameLength)]))
                    / Float(frameLength)
                return power.squareRoot()
            }
        }
    }

    /// numpy's float32 pairwise summation (`pairwise_sum_FLOAT`): under 8 values in order; up to 128 with
    /// eight accumulators combined as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)) and the rest added in order;
    /// longer runs split in halves rounded down to a multiple of 8.
    static func pairwiseSum(_ a: UnsafeBufferPointer<Float>) -> Float {
        let n = a.count
        if n < 8 {
            var sum: Float = 0
            for value in a { sum += value }
            return sum
        }
        if n <= 128 {
            var r = (a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
            var i = 8
            while i < n - n % 8 {
                r.0 += a[i]; r.1 += a[i + 1]; r.2 += a[i + 2]; r.3 += a[i + 3]
                r.4 += a[i + 4]; r.5 += a[i + 5]; r.6 += a[i + 6]; r.7 += a[i + 7]
                i += 8
            }
            var sum = ((r.0 + r.1) + (r.2 + r.3)) + ((r.4 + r.5) + (r.6 + r.7))
            while i < n { sum += a[i]; i += 1 }
            return sum
        }
        var half = n / 2
        half -= half % 8
        return pairwiseSum(UnsafeBufferPointer(rebasing: a[0..<half])) + pairwiseSum(UnsafeBufferPointer(rebasing: a[half..<n]))
    }

    /// `F.interpolate(x[None, None], size=count, mode="linear")` (align_corners False), in float32 as PyTorch's
    /// CPU kernel computes it: `src = (n_in / n_out) * (i + 0.5) - 0.5` clamped at 0 (with i + 0.5 itself
    /// rounded to float32), the left index truncated, the weights clamped to 0..1.
    public static func interpolateLinear(_ x: [Float], count: Int) -> [Float] {
        let nIn = x.count
        let scale = Float(nIn) / Float(count)
        return (0..<count).map { i in
            var source = scale * (Float(i) + 0.5) - 0.5
            if source < 0 { source = 0 }
            let i0 = Int(source)
            let i1 = i0 + (i0 < nIn - 1 ? 1 : 0)
            let lambda1 = min(max(source - Float(i0), 0), 1)
            let lambda0 = 1 - lambda1
            return lambda0 * x[i0] + lambda1 * x[i1]
        }
    }
}
