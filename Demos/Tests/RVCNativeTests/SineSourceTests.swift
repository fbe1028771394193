import Foundation
import Testing
@testable import RVCNative

@Suite struct SineSourceTests {
    /// Upstream's phase is `cumsum(rad_up) - (wraps of the interpolated cumsum)`, so its sine is, up to
    /// float32 rounding, sin(2 pi frac(cumsum(rad_up))). Long unvoiced stretches (flat cumulative phase) are
    /// where an interpolation off by one ulp used to count thousands of wraps and drift the phase; the voiced
    /// audio after them must stay on the ideal.
    @Test(arguments: [(40000, 400), (48000, 480), (32000, 320)])
    func staysOnTheIdealPhaseAcrossUnvoicedStretches(sampleRate: Int, upp: Int) {
        let frames = 300
        let f0: [Float] = (0..<frames).map { t in
            switch t {
            case 0..<20, 90..<170: return 0
            default: return 110 + 60 * sinf(Float(t) * 0.05)
            }
        }
        let source = SineSource(sampleRate: sampleRate, upsampleFactor: upp, linearWeight: 1, linearBias: 0)
        let samples = frames * upp
        let output = source(f0: Tensor(shape: [1, frames], data: f0), noise: Tensor(zeros: [1, samples, 1]),
                            phase: Tensor(zeros: [1, 1]))
        var phase = 0.0
        var ideal = [Float](repeating: 0, count: samples)
        for n in 0..<samples {
            let frame = n / upp
            phase += Double(f0[frame] / Float(sampleRate))
            ideal[n] = f0[frame] > 0 ? Float(tanh(0.1 * sin(2 * Double.pi * (phase - phase.rounded(.down))))) : 0
        }
        #expect(snrDecibels(reference: ideal, candidate: output.data) > 100)
    }

    @Test func unvoicedSamplesAreScaledNoise() {
        let source = SineSource(sampleRate: 40000, upsampleFactor: 4, linearWeight: 1, linearBias: 0)
        let noise = Tensor(shape: [1, 8, 1], data: [1, -1, 2, -2, 0.5, 0.5, 1, 1])
        let output = source(f0: Tensor(shape: [1, 2], data: [0, 0]), noise: noise, phase: Tensor(zeros: [1, 1]))
        // noise_amp = sine_amp / 3 where unvoiced
        let expected = noise.data.map { tanhf(Float(0.1 / 3) * $0) }
        #expect(maxAbsoluteDifference(output.data, expected) < 1e-7)
    }
}
