import Foundation

/// The NSF harmonic source (`SourceModuleHnNSF` with `SineGen(harmonic_num=0)`), upstream rvc 0.3.5.
///
/// Random draws come from the inputs: `noise` is the standard normal `randn_like(sine_waves)` and `phase` the
/// `rand_ini` initial phase. Every step mirrors upstream's float32 arithmetic, including its quirks: the
/// phase is the cumulative sum of the nearest-upsampled per-sample increment, minus one wherever a
/// separately interpolated cumulative sum wraps, so the running value stays small.
public struct SineSource: Sendable {
    public let sampleRate: Int
    public let upsampleFactor: Int
    let linearWeight: Float
    let linearBias: Float

    static let sineAmplitude: Float = 0.1
    static let noiseStd: Float = 0.003

    init(sampleRate: Int, upsampleFactor: Int, linearWeight: Float, linearBias: Float) {
        self.sampleRate = sampleRate
        self.upsampleFactor = upsampleFactor
        self.linearWeight = linearWeight
        self.linearBias = linearBias
    }

    init(loading weights: inout WeightStore, sampleRate: Int, upsampleFactor: Int) throws {
        self.init(sampleRate: sampleRate, upsampleFactor: upsampleFactor,
                  linearWeight: try weights.take("dec.m_source.l_linear.weight", shape: [1, 1])[0],
                  linearBias: try weights.take("dec.m_source.l_linear.bias", shape: [1])[0])
    }

    /// f0 (B, T) Hz, noise (B, T * upp, 1), phase (B, 1) -> tanh(l_linear(sine)) (B, T * upp, 1).
    public func callAsFunction(f0: Tensor, noise: Tensor, phase: Tensor) -> Tensor {
        let (batches, frames) = (f0.shape[0], f0.shape[1])
        let samples = frames * upsampleFactor
        precondition(noise.shape == [batches, samples, 1] && phase.shape == [batches, 1])
        var output = Tensor(zeros: [batches, samples, 1])
        var radians = [Float](repeating: 0, count: frames)
        var framePhase = [Float](repeating: 0, count: frames)
        var wrapped = [Float](repeating: 0, count: samples)
        let upp = Float(upsampleFactor)
        let rate = Float(sampleRate)
        // F.interpolate(mode="linear", align_corners=True): source = n * (T - 1) / (N - 1) in float.
        let linearRatio: Float = samples > 1 ? Float(frames - 1) / Float(samples - 1) : 0
        // F.interpolate(mode="nearest", scale_factor=upp): source = floor(n * float(1 / upp)).
        let nearestScale = Float(1.0 / Double(upsampleFactor))
        let noiseAmplitudeUnvoiced = Float(Double(Self.sineAmplitude) / 3)

        for b in 0..<batches {
            // rad_values = (f0 / sr) % 1, plus rand_ini on frame 0; cumsum accumulates in double as torch's CPU
            // kernel does, then scales by upp.
            var sum = 0.0
            for t in 0..<frames {
                var rad = Self.remainderOne(f0.data[b * frames + t] / rate)
                if t == 0 { rad += phase.data[b] }
                radians[t] = rad
                sum += Double(rad)
                framePhase[t] = Float(sum) * upp
            }
            for n in 0..<samples {
                var lower = 0
                var upperWeight: Float = 0
                if frames == samples {
                    lower = n
                } else {
                    let position = linearRatio * Float(n)
                    lower = min(Int(position.rounded(.down)), frames - 1)
                    upperWeight = min(max(position - Float(lower), 0), 1)
                }
                let upper = lower + (lower < frames - 1 ? 1 : 0)
                // PyTorch's CPU kernel computes `x0 * w0 + x1 * w1` as fma(w0, x0, x1 * w1). Matching it to the
                // last bit matters: where f0 is 0 the cumulative phase is flat, and an interpolation that wobbles
                // by one ulp there reads as thousands of wraps, drifting the phase far from upstream's.
                let value = (upperWeight * framePhase[upper]).addingProduct(1 - upperWeight, framePhase[lower])
                wrapped[n] = Self.remainderOne(value)
            }
            var phaseSum = 0.0
            for n in 0..<samples {
                let frame = min(Int((Float(n) * nearestScale).rounded(.down)), frames - 1)
                let shift: Float = (n > 0 && wrapped[n] - wrapped[n - 1] < 0) ? -1 : 0
                phaseSum += Double(radians[frame] + shift)
                let sine = sinf(Float(phaseSum) * 2 * Float.pi) * Self.sineAmplitude
                let voiced: Float = f0.data[b * frames + frame] > 0 ? 1 : 0
                let noiseAmplitude = voiced * Self.noiseStd + (1 - voiced) * noiseAmplitudeUnvoiced
                let excitation = sine * voiced + noiseAmplitude * noise.data[b * samples + n]
                output.data[b * samples + n] = tanhf(excitation * linearWeight + linearBias)
            }
        }
        return output
    }

    /// torch.remainder(x, 1) for float32: fmod, moved into [0, 1).
    static func remainderOne(_ value: Float) -> Float {
        var result = fmodf(value, 1)
        if result != 0 && result < 0 { result += 1 }
        return result
    }
}
