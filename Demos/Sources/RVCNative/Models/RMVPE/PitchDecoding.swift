import Foundation

/// Salience -> f0, upstream `RMVPE.decode` / `to_local_average_cents`: bin i sits at
/// `cents_per_bin * i + cents_offset` cents above `f0_reference_hz`; a frame's pitch is the salience-weighted
/// mean of the cents of the `local_average_bins` bins around its argmax (bins past either end count as zero
/// salience), and the frame is unvoiced (f0 = 0) when its largest salience is <= `threshold`.
public struct PitchDecoder: Sendable {
    public let threshold: Double
    public let centsPerBin: Double
    public let centsOffset: Double
    public let radius: Int
    public let referenceHz: Double

    public init(_ decode: RMVPEConfiguration.Decode) {
        threshold = decode.threshold
        centsPerBin = decode.centsPerBin
        centsOffset = decode.centsOffset
        radius = decode.localAverageBins / 2
        referenceHz = decode.f0ReferenceHz
    }

    /// Cents above the reference of one frame's salience (0 when unvoiced).
    public func localAverageCents(_ salience: UnsafeBufferPointer<Float>) -> Double {
        guard var center = salience.indices.first else { return 0 }
        // np.argmax: the first of equal maxima.
        for bin in salience.indices where salience[bin] > salience[center] { center = bin }
        guard Double(salience[center]) > threshold else { return 0 }
        var weightedCents = 0.0
        var weightSum = 0.0
        for bin in max(0, center - radius)...min(salience.count - 1, center + radius) {
            let weight = Double(salience[bin])
            weightedCents += weight * (centsPerBin * Double(bin) + centsOffset)
            weightSum += weight
        }
        return weightedCents / weightSum
    }

    /// Hz = reference * 2^(cents / 1200); 0 cents (unvoiced) -> 0 Hz, as upstream's `f0[f0 == 10] = 0`.
    public func frequency(cents: Double) -> Double {
        cents == 0 ? 0 : referenceHz * pow(2, cents / 1200)
    }

    /// (B, T, bins) salience -> (B, T) f0 in Hz, rounded to Float as upstream returns it.
    public func f0(_ salience: Tensor) -> Tensor {
        precondition(salience.rank == 3)
        let (batches, frames, bins) = (salience.shape[0], salience.shape[1], salience.shape[2])
        var f0 = Tensor(zeros: [batches, frames])
        salience.data.withUnsafeBufferPointer { values in
            for row in 0..<(batches * frames) {
                let frame = UnsafeBufferPointer(rebasing: values[(row * bins)..<((row + 1) * bins)])
                f0.data[row] = Float(frequency(cents: localAverageCents(frame)))
            }
        }
        return f0
    }
}
