/// Upstream's long-audio windowing (rvc 0.3.5 `Pipeline.pipeline`, the CPU configuration of
/// `Config.device_config`: x_pad 1, x_query 6, x_center 38, x_max 41 seconds): the quiet-point split search,
/// the reflect padding every segment and RMVPE read from, and each segment's slices.
public struct Windowing: Equatable, Sendable {
    public static let sampleRate = 16000
    /// One pitch / synthesizer frame: 10 ms at 16 kHz (upstream's `self.window`).
    public static let window = 160

    public var xPad = 1
    public var xQuery = 6
    public var xCenter = 38
    public var xMax = 41

    public init() {}

    public var tPad: Int { Windowing.sampleRate * xPad }
    public var tPad2: Int { 2 * tPad }
    public var tQuery: Int { Windowing.sampleRate * xQuery }
    public var tCenter: Int { Windowing.sampleRate * xCenter }
    public var tMax: Int { Windowing.sampleRate * xMax }
    /// Output samples trimmed from each end of a segment's audio at the voice's rate.
    public func tPadTarget(_ targetRate: Int) -> Int { targetRate * xPad }

    /// `opt_ts`: for each multiple t of t_center inside the audio, the first index of the smallest centred
    /// 160-sample sum of |x| within t ± t_query. Empty unless the 80-sample reflect-padded audio is longer
    /// than t_max. The sums accumulate i = 0..159 in float64 as upstream's loop does: a cumulative-sum
    /// difference rounds differently and can move the argmin between near-equal quiet samples.
    public func splitPoints(_ audio: [Double]) -> [Int] {
        let n = audio.count
        let half = Windowing.window / 2
        guard n + 2 * half > tMax else { return [] }
        let padded = Windowing.reflectPadded(audio, left: half, right: half)
        var sums = [Double](repeating: 0, count: n)
        for i in 0..<Windowing.window {
            for j in 0..<n { sums[j] += abs(padded[i + j]) }
        }
        var points: [Int] = []
        for t in stride(from: tCenter, to: n, by: tCenter) {
            let range = (t - tQuery)..<min(t + tQuery, n)
            var best = range.lowerBound
            for j in range where sums[j] < sums[best] { best = j }
            points.append(best)
        }
        return points
    }

    /// `np.pad(audio, (t_pad, t_pad), mode="reflect")`: the signal every segment, and RMVPE, read from.
    public func padded(_ filtered: [Double]) -> [Double] {
        Windowing.reflectPadded(filtered, left: tPad, right: tPad)
    }

    /// numpy's "reflect" (the edge sample not repeated; scipy's and torch's "reflect" agree, numpy's
    /// "symmetric" differs), iterated as numpy does when a side is longer than the signal: a reflection of
    /// period 2 (n - 1).
    public static func reflectPadded<Value>(_ x: [Value], left: Int, right: Int) -> [Value] {
        let n = x.count
        guard n > 1 else { return [Value](repeating: x[0], count: left + n + right) }
        let period = 2 * (n - 1)
        return (-left..<(n + right)).map { i in
            var m = i % period
            if m < 0 { m += period }
            return x[m < n ? m : period - m]
        }
    }

    /// One synthesizer call: `padded[audioStart..<audioStop]` (nil: to the end) with pitch frames
    /// `pitchStart..<pitchStop` of the whole padded signal's track.
    public struct Segment: Equatable, Sendable {
        public let index: Int
        public let audioStart: Int
        public let audioStop: Int?
        public let pitchStart: Int
        public let pitchStop: Int?
    }

    /// Upstream's segment loop over the t_pad-padded audio: each split floored to a frame; the audio slice
    /// carries one frame (160 samples) past the pitch slice; the last segment runs to the end.
    public func segments(splitAt points: [Int]) -> [Segment] {
        let w = Windowing.window
        var segments: [Segment] = []
        var start = 0
        for point in points {
            let t = point / w * w
            segments.append(Segment(index: segments.count, audioStart: start, audioStop: t + tPad2 + w,
                                    pitchStart: start / w, pitchStop: (t + tPad2) / w))
            start = t
        }
        segments.append(Segment(index: segments.count, audioStart: start, audioStop: nil, pitchStart: start / w,
                                pitchStop: nil))
        return segments
    }
}
