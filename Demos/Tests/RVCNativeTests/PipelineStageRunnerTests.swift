import Foundation
import Testing
@testable import RVCNative

/// The whole conversion (`PipelineStageRunner`) on the committed pipeline golden sets: `golden/tiny-pipeline/`
/// (no index) and `golden/tiny-pipeline-index/` (retrieval with `swift_fixtures/tiny-index-v1`), chained and
/// teacher-forced: every stage at the stage table's floor (80 dB; content features, retrieved and blended
/// features 100 dB), integers equal, int16 within 1 LSB.
struct PipelineStageRunnerTests {
    /// Each committed pipeline golden set and the index export it was recorded with.
    static let goldens: [(folder: String, index: String?)] = [("tiny-pipeline", nil), ("tiny-pipeline-index", "tiny-index-v1")]

    /// Every stage's output of one run, as recorded, and the golden set.
    func run(_ folder: String, index: String?, _ mode: StageRunner.Mode) throws -> ([String: Tensor], GoldenSet) {
        let path = Repository.goldens.appendingPathComponent(folder).path
        let golden = try GoldenSet(path: path)
        let extra = try PipelineGoldenExtra.load(goldenFolder: path)
        let assets = Repository.fixtures.path
        let (synthesizer, _) = try Synthesizer.load(assetsDirectory: assets, modelName: "tiny-v1-32k")
        let runner = PipelineStageRunner(
            synthesizer: synthesizer, contentEncoder: try ContentEncoder.load(assetsDirectory: assets, modelName: "tiny-hubert-v1"),
            rmvpe: try RMVPE.load(assetsDirectory: assets, modelName: "tiny-rmvpe"),
            index: try index.map { try IVFFlatIndex.load(assetsDirectory: assets, modelName: $0) })
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

    func expectEveryStagePasses(_ folder: String, index: String?, _ mode: StageRunner.Mode) throws {
        let (outputs, golden) = try run(folder, index: index, mode)
        let goldenIndex = try #require(golden.index)
        let integers: Set<String> = ["split_points", "pitch", "segment.0.pitch", "segment.0.phone_lengths"]
        var figures: [String] = []
        for stage in goldenIndex.stages {
            for name in stage.outputs {
                let candidate = try #require(outputs[name], "\(name) was not recorded").data
                let expected = try reference(golden, name)
                #expect(candidate.count == expected.count, "\(name): \(candidate.count) values, golden \(expected.count)")
                if name == "output" {
                    let largest = zip(candidate, expected).map { abs(Double($0) - $1) }.max() ?? 0
                    #expect(largest <= 1, "int16 output differs by \(largest) LSB (\(folder), \(mode.rawValue))")
                    figures.append("output \(largest) LSB")
                } else if integers.contains(name) {
                    #expect(candidate.map(Double.init) == expected, "\(name) differs (\(folder), \(mode.rawValue))")
                } else {
                    let db = snr(expected, candidate)
                    #expect(db >= stage.minSnrDb, "\(name) at \(db) dB, floor \(stage.minSnrDb) (\(folder), \(mode.rawValue))")
                    figures.append(String(format: "%@ %.1f dB", name, db))
                }
            }
        }
        print("\(folder) \(mode.rawValue): " + figures.joined(separator: ", "))
    }

    @Test(arguments: goldens.map(\.folder))
    func teacherForcedEveryStageReachesItsFloor(_ folder: String) throws {
        try expectEveryStagePasses(folder, index: Self.goldens.first { $0.folder == folder }?.index, .teacherForced)
    }

    @Test(arguments: goldens.map(\.folder))
    func chainedEveryStageReachesItsFloor(_ folder: String) throws {
        try expectEveryStagePasses(folder, index: Self.goldens.first { $0.folder == folder }?.index, .chained)
    }

    @Test func theRetrievalGoldenHoldsRetrievalAt100Decibels() throws {
        let golden = try GoldenSet(path: Repository.goldens.appendingPathComponent("tiny-pipeline-index").path)
        let retrieval = try #require(golden.index?.stages.first { $0.name == "segment.0.retrieval" })
        #expect(retrieval.outputs == ["segment.0.retrieved", "segment.0.blended"])
        #expect(retrieval.minSnrDb >= 100)
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
