import Foundation
import Testing
@testable import RVCNative

/// The whole conversion (`PipelineStageRunner`) on the committed pipeline golden set `golden/tiny-pipeline/`:
/// every stage at the stage table's floor (80 dB; content features 100 dB), integers equal, int16 within 1 LSB.
struct PipelineStageRunnerTests {
    static let folder = Repository.goldens.appendingPathComponent("tiny-pipeline").path

    /// Every stage's output of one run, as recorded, and the golden set.
    func run(_ mode: StageRunner.Mode) throws -> ([String: Tensor], GoldenSet) {
        let golden = try GoldenSet(path: Self.folder)
        let extra = try PipelineGoldenExtra.load(goldenFolder: Self.folder)
        let assets = Repository.fixtures.path
        let (synthesizer, _) = try Synthesizer.load(assetsDirectory: assets, modelName: "tiny-v1-32k")
        let runner = PipelineStageRunner(
            synthesizer: synthesizer, contentEncoder: try ContentEncoder.load(assetsDirectory: assets, modelName: "tiny-hubert-v1"),
            rmvpe: try RMVPE.load(assetsDirectory: assets, modelName: "tiny-rmvpe"))
        var outputs: [String: Tensor] = [:]
        try runner.run(golden: golden, extra: extra, mode: mode) { name, tensor in outputs[name] = tensor }
        return (outputs, golden)
    }

    func reference(_ golden: GoldenSet, _ name: String) throws -> [Double] {
        switch try golden.file.entry(name).dtype {
        case .i16: return try golden.file.int16Values(name).values.map(Double.init)
        case .i32, .i64: return try golden.int32Values(name).values.map(Double.init)
        default: return try golden.file.float64Values(name).values
        }
    }

    func snr(_ reference: [Double], _ candidate: [Float]) -> Double {
        var signal = 0.0, noise = 0.0
        for (r, c) in zip(reference, candidate) {
            signal += r * r
            noise += (Double(c) - r) * (Double(c) - r)
        }
        return noise == 0 ? .infinity : 10 * log10(signal / noise)
    }

    func expectEveryStagePasses(_ mode: StageRunner.Mode) throws {
        let (outputs, golden) = try run(mode)
        let index = try #require(golden.index)
        let integers: Set<String> = ["split_points", "pitch", "segment.0.pitch", "segment.0.phone_lengths"]
        for stage in index.stages {
            for name in stage.outputs {
                let candidate = try #require(outputs[name], "\(name) was not recorded").data
                let expected = try reference(golden, name)
                #expect(candidate.count == expected.count, "\(name): \(candidate.count) values, golden \(expected.count)")
                if name == "output" {
                    let largest = zip(candidate, expected).map { abs(Double($0) - $1) }.max() ?? 0
                    #expect(largest <= 1, "int16 output differs by \(largest) LSB (\(mode.rawValue))")
                } else if integers.contains(name) {
                    #expect(candidate.map(Double.init) == expected, "\(name) differs (\(mode.rawValue))")
                } else {
                    let db = snr(expected, candidate)
                    #expect(db >= stage.minSnrDb, "\(name) at \(db) dB, floor \(stage.minSnrDb) (\(mode.rawValue))")
                }
            }
        }
    }

    @Test func teacherForcedEveryStageReachesItsFloor() throws {
        try expectEveryStagePasses(.teacherForced)
    }

    @Test func chainedEveryStageReachesItsFloor() throws {
        try expectEveryStagePasses(.chained)
    }

    @Test func protectBlendsOnlyFramesBelowOneHertz() {
        let features = Tensor(shape: [1, 2], data: [2, 4])
        let call = SegmentSynthesis.inputs(features: features, audioSamples: 480, pitch: [1, 1], pitchf: [0, 120],
                                           protect: 0.33)
        #expect(call.phoneLength == 2)
        #expect(call.phone.shape == [1, 2, 2])
        let p = Float(0.33)
        let unvoiced: [Float] = [2 * p + 2 * (1 - p), 4 * p + 4 * (1 - p)]
        #expect(call.phone.data == unvoiced + [2, 4])
    }

    @Test func shorterFeaturesCropThePitch() {
        let call = SegmentSynthesis.inputs(features: Tensor(shape: [2, 1], data: [1, 2]), audioSamples: 800,
                                           pitch: [1, 2, 3, 4, 5], pitchf: [100, 100, 100, 100, 100], protect: 0.5)
        #expect(call.phoneLength == 4)
        #expect(call.pitch == [1, 2, 3, 4])
        #expect(call.phone.data == [1, 1, 2, 2])
    }
}
