import Foundation
import Testing
@testable import RVCNative

/// `Resampler` to its stated quality (flat passband to 0.92 of the lower Nyquist, 120 dB stopband from Nyquist,
/// zero delay, soxr's output length), and against the reference's soxr HQ on `swift_fixtures/soxr-hq.safetensors`.
struct ResamplerTests {
    /// `amplitude * sin(2 pi f i / rate + 0.3)` for i in 0..<count.
    func tone(_ frequency: Double, rate: Int, count: Int, amplitude: Double = 0.5) -> [Double] {
        (0..<count).map { amplitude * sin(2 * Double.pi * frequency * Double($0) / Double(rate) + 0.3) }
    }

    /// The output's middle, away from the zero-padded edges (a few milliseconds of filter each side).
    func middle<T>(_ x: [T]) -> ArraySlice<T> { x[(x.count / 8)..<(x.count - x.count / 8)] }

    func snr(_ reference: ArraySlice<Double>, _ candidate: ArraySlice<Float>) -> Double {
        var signal = 0.0, noise = 0.0
        for (r, c) in zip(reference, candidate) {
            signal += r * r
            noise += (Double(c) - r) * (Double(c) - r)
        }
        return 10 * log10(signal / noise)
    }

    @Test func theOutputLengthIsSoxrsRoundedLength() {
        // (input rate, input samples, soxr.resample's output samples at 16 kHz).
        let lengths = [(48000, 44101, 14700), (48000, 2, 1), (48000, 1, 0), (44100, 7, 3), (44100, 12345, 4479),
                       (22050, 100, 73), (8000, 3, 6), (96000, 3, 1), (96000, 12345, 2058), (16001, 44101, 44098)]
        for (rate, count, expected) in lengths {
            #expect(Resampler(from: rate, to: 16000).outputCount(count) == expected, "\(count) samples at \(rate) Hz")
        }
    }

    @Test func anImpulseStaysWhereItIsInTime() {
        for (rate, at, expected) in [(48000, 24000, 8000), (44100, 44100, 16000), (8000, 100, 200)] {
            var impulse = [Float](repeating: 0, count: 2 * at)
            impulse[at] = 1
            let output = Resampler(from: rate, to: 16000).resampled(impulse)
            let peak = output.indices.max { abs(output[$0]) < abs(output[$1]) }
            #expect(peak == expected, "\(rate) Hz")
        }
    }

    @Test func passbandTonesAreTheBandLimitedSignalToAHundredDecibels() {
        for rate in [8000, 22050, 44100, 48000, 96000] {
            let edge = Resampler.passbandEnd * Double(min(rate, 16000)) / 2
            for frequency in [100.0, 1000, 3000, 6000, 7300] where frequency < edge {
                let input = tone(frequency, rate: rate, count: rate / 4).map { Float($0) }
                let output = Resampler(from: rate, to: 16000).resampled(input)
                let ideal = tone(frequency, rate: 16000, count: output.count)
                let db = snr(middle(ideal), middle(output))
                #expect(db >= 100, "\(frequency) Hz from \(rate) Hz: \(db) dB")
            }
        }
    }

    @Test func stopbandTonesAreAttenuatedByAtLeast120Decibels() {
        for (rate, frequencies) in [(48000, [8100.0, 9000, 12000, 20000]), (44100, [8100, 15000, 22000])] {
            for frequency in frequencies {
                let input = tone(frequency, rate: rate, count: rate / 4)
                let output = Resampler(from: rate, to: 16000).resampled(input.map { Float($0) })
                let power = { (x: ArraySlice<Double>) in x.reduce(0) { $0 + $1 * $1 } / Double(x.count) }
                let db = 10 * log10(power(middle(output).map(Double.init)[...]) / power(input[...]))
                #expect(db <= -120, "\(frequency) Hz from \(rate) Hz: \(db) dB")
            }
        }
    }

    @Test func upsamplingLeavesNoImages() {
        // 3 kHz at 8 kHz has images at 5 and 11 kHz; at 16 kHz only the tone may remain.
        let input = tone(3000, rate: 8000, count: 2000).map { Float($0) }
        let output = Resampler(from: 8000, to: 16000).resampled(input)
        #expect(snr(middle(tone(3000, rate: 16000, count: output.count)), middle(output)) >= 100)
    }

    @Test func itAgreesWithTheReferencesSoxrHQInThePassband() throws {
        let file = try SafeTensorsFile(path: Repository.fixtures.appendingPathComponent("soxr-hq.safetensors").path)
        for rate in [44100, 48000] {
            for signal in ["sweep", "voice"] {
                let input = try file.int16Values("\(signal).\(rate)").values.map { Float($0) / 32768 }
                let soxr = try file.tensor("\(signal).\(rate).soxr").data.map(Double.init)
                let ours = Resampler(from: rate, to: 16000).resampled(input)
                #expect(ours.count == soxr.count)
                let db = snr(soxr[...], ours[...])
                print("resampler vs soxr HQ: \(signal) from \(rate) Hz: \(db) dB")
                #expect(db >= 90, "\(signal) from \(rate) Hz: \(db) dB")
            }
        }
    }
}
