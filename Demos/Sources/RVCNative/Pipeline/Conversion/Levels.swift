/// The two level rules around upstream's pipeline, in float32 as numpy 2 computes them (NEP 50: a Python
/// float beside a float32 scalar stays float32).
public enum Levels {
    /// `vc_single`'s input rule: `audio_max = np.abs(audio).max() / 0.95; if audio_max > 1: audio /= audio_max`.
    /// Only attenuates: quieter input is returned as it is.
    public static func peakNormalised(_ audio: [Float]) -> [Float] {
        let audioMax = peak(audio) / Float(0.95)
        guard audioMax > 1 else { return audio }
        return audio.map { $0 / audioMax }
    }

    /// The output rule: peak limited to 0.99 (`max_int16 = 32768 / audio_max` when `audio_max = max|x| / 0.99`
    /// exceeds 1), then `(x * max_int16).astype(np.int16)`: a float32 product truncated towards zero.
    public static func int16(_ audio: [Float]) -> [Int16] {
        let audioMax = peak(audio) / Float(0.99)
        let scale: Float = audioMax > 1 ? Float(32768) / audioMax : 32768
        return audio.map { Int16(($0 * scale).rounded(.towardZero)) }
    }

    static func peak(_ audio: [Float]) -> Float {
        audio.reduce(0) { max($0, abs($1)) }
    }
}
