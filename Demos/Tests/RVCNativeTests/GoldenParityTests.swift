import Foundation
import Testing
@testable import RVCNative

/// Every committed golden set (golden/<name>/) with its exported voice (swift_fixtures/<name>.*): each
/// stage's output must reach the index's `min_snr_db` against the golden, chained and teacher-forced.
@Suite struct GoldenParityTests {
    struct StageResult {
        let stage: String
        let tensor: String
        let snr: Double
        let required: Double
    }

    static func stageResults(voice name: String, mode: StageRunner.Mode) throws -> [StageResult] {
        let (synthesizer, _) = try Synthesizer.load(assetsDirectory: Repository.fixtures.path, modelName: name)
        let golden = try GoldenSet(path: Repository.goldens.appendingPathComponent(name).path)
        let index = try #require(golden.index)
        let inputs = try SynthesisInputs(golden: golden, configuration: synthesizer.configuration)
        var results: [StageResult] = []
        try StageRunner(synthesizer: synthesizer).run(inputs, mode: mode, golden: golden) { tensorName, tensor in
            guard let entry = index.entry(tensorName), let stageName = entry.stage,
                  let stage = index.stages.first(where: { $0.name == stageName }),
                  let native = VoiceTensors.nativeLayout(of: tensorName) else { return }
            // Compare in the golden's layout, as `rvc-ios golden diff` does.
            let candidate = try #require(tensor.converted(fromLayout: native, toLayout: entry.layout))
            let reference = try golden.file.tensor(tensorName)
            #expect(candidate.shape == reference.shape, "\(name) \(tensorName)")
            guard candidate.shape == reference.shape else { return }
            results.append(StageResult(stage: stageName, tensor: tensorName,
                                       snr: snrDecibels(reference: reference.data, candidate: candidate.data),
                                       required: stage.minSnrDb))
        }
        return results
    }

    @Test func goldenSetsExist() {
        #expect(!Repository.goldenVoices().isEmpty, "no golden/<name>/ with swift_fixtures/<name>.manifest.json found")
    }

    @Test(arguments: Repository.goldenVoices(), [StageRunner.Mode.chained, .teacherForced])
    func everyStageReachesItsMinimumSNR(voice: String, mode: StageRunner.Mode) throws {
        let results = try Self.stageResults(voice: voice, mode: mode)
        let index = try GoldenIndex.load(path: Repository.goldens.appendingPathComponent("\(voice)/index.json").path)
        let produced = Set(index.tensors.filter { $0.role == "intermediate" || $0.role == "output" }.map(\.name))
        #expect(Set(results.map(\.tensor)) == produced, "\(voice): every golden intermediate is produced")
        for result in results {
            #expect(result.snr >= result.required,
                    "\(voice) \(mode.rawValue): \(result.tensor) at \(result.snr) dB < \(result.required) dB")
        }
    }

    /// The production path (decoder in time chunks, halo on each side) must give the golden audio too,
    /// including with chunks far shorter than the input.
    @Test(arguments: Repository.goldenVoices(), [0, 7, 16])
    func chunkedSynthesisMatchesTheGoldenAudio(voice: String, chunkFrames: Int) throws {
        let (synthesizer, _) = try Synthesizer.load(assetsDirectory: Repository.fixtures.path, modelName: voice)
        let golden = try GoldenSet(path: Repository.goldens.appendingPathComponent(voice).path)
        let inputs = try SynthesisInputs(golden: golden, configuration: synthesizer.configuration)
        let audio = try synthesizer.synthesize(inputs, decoderChunkFrames: chunkFrames)
        let reference = try golden.tensor("audio", layout: "BTC")
        #expect(audio.shape == reference.shape)
        #expect(snrDecibels(reference: reference.data, candidate: audio.data) >= 80)
    }
}

extension StageRunner.Mode: CustomTestStringConvertible {
    public var testDescription: String { rawValue }
}
