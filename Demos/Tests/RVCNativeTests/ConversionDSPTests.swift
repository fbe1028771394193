import Foundation
import Testing
@testable import RVCNative

/// The signal processing around the networks (Pipeline/Conversion/) against the committed pipeline golden
/// set `golden/tiny-pipeline/` (`scripts/make_fixtures.py`: 0.5 s of the voice-like test signal, peak 1.2).
struct ConversionDSPTests {
    static let folder = Repository.goldens.appendingPathComponent("tiny-pipeline").path
    static let golden: GoldenSet? = try? GoldenSet(path: folder)

    func golden() throws -> GoldenSet { try #require(Self.golden, "golden/tiny-pipeline is missing") }

    func doubles(_ name: String) throws -> [Double] { try golden().file.float64Values(name).values }
    func floats(_ name: String) throws -> [Float] { try golden().file.tensor(name).data }

    @Test func peakNormalisationIsBitExact() throws {
        #expect(Levels.peakNormalised(try floats("input")) == (try floats("normalised")))
    }

    @Test func quieterInputIsNotAmplified() {
        let quiet: [Float] = [0.1, -0.5, 0.25]
        #expect(Levels.peakNormalised(quiet) == quiet)
    }

    @Test func highPassIsBitExactWithScipysFiltfilt() throws {
        let filtered = try HighPass.filtfilt(try floats("normalised"))
        let expected = try doubles("filtered")
        #expect(filtered.count == expected.count)
        let differing = zip(filtered, expected).filter { $0 != $1 }.count
        #expect(differing == 0, "\(differing) of \(expected.count) filtered samples differ")
    }

    @Test func highPassRefusesAudioShorterThanItsEdgeExtension() {
        #expect(throws: ConversionError.audioTooShort(samples: 18, minimum: 19)) {
            try HighPass.filtfilt([Float](repeating: 0.5, count: 18))
        }
    }

    @Test func reflectPaddingIsNumpysIncludingLongerThanTheSignal() throws {
        // The fixture's 8000 samples are padded by 16000 at each end: numpy reflects more than once.
        #expect(Windowing().padded(try doubles("filtered")) == (try doubles("padded")))
        #expect(Windowing.reflectPadded([1, 2, 3], left: 2, right: 2) == [3, 2, 1, 2, 3, 2, 1])
        #expect(Windowing.reflectPadded([1, 2, 3], left: 5, right: 0) == [2, 1, 2, 3, 2, 1, 2, 3])
    }

    @Test func shortAudioHasNoSplitPoints() throws {
        let (shape, _) = try golden().int32Values("split_points")
        #expect(shape == [0])
        #expect(Windowing().splitPoints(try doubles("filtered")).isEmpty)
    }

    @Test func splitPointIsTheFirstQuietestSampleNearEachCentre() {
        // 100 s of a constant level with two silent stretches of equal depth near 38 s: the first wins;
        // near 76 s one silent sample (its centred 160-sample sum is the smallest at that sample only).
        var w = Windowing()
        w.xCenter = 2; w.xQuery = 1; w.xMax = 3
        var audio = [Double](repeating: 0.5, count: 16000 * 5)
        for j in 30000..<30400 { audio[j] = 0 }  // sums are smallest on 30080..<30320; the first is 30080
        for j in 33000..<33400 { audio[j] = 0 }
        audio[64000] = -0.5  // |x| counts, not x: no minimum here
        let points = w.splitPoints(audio)
        #expect(points.count == 2)
        #expect(points.first == 30080)
    }

    @Test func segmentsCarryOneFrameMoreAudioThanPitch() {
        let w = Windowing()
        let segments = w.segments(splitAt: [608_123, 1_216_050])
        #expect(segments.count == 3)
        #expect(segments[0] == Windowing.Segment(index: 0, audioStart: 0, audioStop: 608_000 + 32000 + 160,
                                                 pitchStart: 0, pitchStop: (608_000 + 32000) / 160))
        #expect(segments[1].audioStart == 608_000 && segments[1].audioStop == 1_216_000 + 32160)
        #expect(segments[2] == Windowing.Segment(index: 2, audioStart: 1_216_000, audioStop: nil,
                                                 pitchStart: 1_216_000 / 160, pitchStop: nil))
        #expect(w.segments(splitAt: []) == [Windowing.Segment(index: 0, audioStart: 0, audioStop: nil, pitchStart: 0,
                                                             pitchStop: nil)])
    }

    @Test func rmsMixingMatchesLibrosaAndTorch() throws {
        let extra = try PipelineGoldenExtra.load(goldenFolder: Self.folder)
        let mixed = RMSMixing.changeRMS(source: try doubles("filtered"), sourceRate: 16000, output: try floats("concatenated"),
                                        outputRate: extra.outputRate, rate: extra.options.rmsMixRate)
        let expected = try floats("rms_mixed")
        let snr = snrDecibels(reference: expected, candidate: mixed)
        #expect(snr >= 120, "rms_mixed at \(snr) dB")
    }

    @Test func int16TruncatesWithinOneLSB() throws {
        let output = Levels.int16(try floats("resampled"))
        let expected = try golden().file.int16Values("output").values
        let largest = zip(output, expected).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(largest <= 1)
        #expect(output == expected)
    }

    @Test func int16LimitsThePeakTo099AndTruncates() {
        #expect(Levels.int16([0.5, -0.25, 0.00001]) == [16384, -8192, 0])
        #expect(Levels.int16([-0.99999, 2.0, 1.0]).map(Int.init) == [-16219, 32440, 16220])
        #expect(Levels.int16([-1.9]) == [-32440])
    }
}
