import Foundation

/// What upstream does between the networks (rvc 0.3.5 `Pipeline.get_f0` after the extractor, and `Pipeline.vc`
/// from the content features on), as `rvc_ios_tools/pipeline/segment.py` computes it.
public enum PitchShift {
    static let f0Min = 50.0, f0Max = 1100.0

    /// `f0 *= pow(2, f0_up_key / 12)` in float64, then coarse pitch (mel-scaled onto 1..255, `np.rint`) and
    /// pitchf (float32 Hz).
    public static func shifted(_ f0: [Double], semitones: Double) -> (pitch: [Int32], pitchf: [Float]) {
        let factor = pow(2, semitones / 12)
        let melMin = 1127 * log(1 + f0Min / 700), melMax = 1127 * log(1 + f0Max / 700)
        var pitch: [Int32] = [], pitchf: [Float] = []
        for hz in f0 {
            let f = hz * factor
            var mel = 1127 * log(1 + f / 700)
            if mel > 0 { mel = (mel - melMin) * 254 / (melMax - melMin) + 1 }
            mel = min(max(mel, 1), 255)
            // np.rint: halves to even.
            pitch.append(Int32(mel.rounded(.toNearestOrEven)))
            pitchf.append(Float(f))
        }
        return (pitch, pitchf)
    }
}

/// One segment's synthesizer call, batch 1: phone (1, 2T, C), its length p_len, pitch and pitchf (p_len).
public struct SegmentCall {
    public var phone: Tensor
    public var phoneLength: Int
    public var pitch: [Int32]?
    public var pitchf: [Float]?
}

public enum SegmentSynthesis {
    /// Upstream's protect is on only strictly below 0.5.
    public static let protectOff = 0.5

    /// `features` (T, C) at 50 frames/s: repeated to 100 frames/s (nearest x2); p_len is the audio's frames
    /// unless the features are shorter, which crops the pitch; protect blends the (x2) features with
    /// themselves on unvoiced frames, in float32 as upstream (without retrieval it can still move an ulp).
    /// `retrieved`: the index-blended features of the same shape (retrieval comes before the x2), or nil.
    public static func inputs(features: Tensor, audioSamples: Int, pitch: [Int32]?, pitchf: [Float]?,
                              protect: Double, retrieved: Tensor? = nil) -> SegmentCall {
        let (t, channels) = (features.shape[0], features.shape[1])
        func doubledFrames(_ x: Tensor) -> [Float] {
            var doubled = [Float](repeating: 0, count: 2 * t * channels)
            for frame in 0..<t {
                let row = x.data[(frame * channels)..<((frame + 1) * channels)]
                doubled.replaceSubrange((2 * frame * channels)..<((2 * frame + 1) * channels), with: row)
                doubled.replaceSubrange(((2 * frame + 1) * channels)..<((2 * frame + 2) * channels), with: row)
            }
            return doubled
        }
        var doubled = doubledFrames(retrieved ?? features)
        var pLength = audioSamples / Windowing.window
        var (pitch, pitchf) = (pitch, pitchf)
        if 2 * t < pLength {
            pLength = 2 * t
            pitch = pitch.map { Array($0.prefix(pLength)) }
            pitchf = pitchf.map { Array($0.prefix(pLength)) }
        }
        if protect < protectOff, pitch != nil, let pf = pitchf {
            let value = Float(protect)
            let raw = retrieved == nil ? doubled : doubledFrames(features)
            for frame in 0..<min(pf.count, 2 * t) {
                // pitchff[pitchf > 0] = 1; pitchff[pitchf < 1] = protect (both on the original pitchf).
                let weight: Float = pf[frame] < 1 ? value : 1
                for ch in 0..<channels {
                    let i = frame * channels + ch
                    doubled[i] = doubled[i] * weight + raw[i] * (1 - weight)
                }
            }
        }
        return SegmentCall(phone: Tensor(shape: [1, 2 * t, channels], data: doubled), phoneLength: pLength,
                           pitch: pitch, pitchf: pitchf)
    }
}

extension SynthesisInputs {
    /// A pipeline segment's synthesizer inputs with that segment's draws from the golden set
    /// (`segment.K.noise.z_p`, `.nsf`, `.nsf_phase`), shapes checked against the voice.
    init(call: SegmentCall, sid: [Int32], golden: GoldenSet, noisePrefix prefix: String, configuration c: Configuration) throws {
        let frames = call.phone.shape[1]
        func draw(_ name: String, layout: String, shape: [Int]) throws -> Tensor {
            let tensor = try golden.tensor(prefix + name, layout: layout)
            guard tensor.shape == shape else { throw RVCError.goldenTensorShape(name: prefix + name, expected: shape, actual: tensor.shape) }
            return tensor
        }
        phone = call.phone
        phoneLengths = [Int32(call.phoneLength)]
        pitch = call.pitch
        pitchf = call.pitchf.map { Tensor(shape: [1, $0.count], data: $0) }
        self.sid = sid
        priorNoise = try draw("noise.z_p", layout: "BTC", shape: [1, frames, c.interChannels])
        if c.f0 {
            sourceNoise = try draw("noise.nsf", layout: "BTC", shape: [1, frames * c.upsampleFactor, 1])
            sourcePhase = try draw("noise.nsf_phase", layout: "BC", shape: [1, 1])
        }
    }
}
