import Foundation
import Testing
@testable import RVCNative

@Suite struct StageRunnerTests {
    static let name = "tiny-v2-40k"

    func voiceAndGolden() throws -> (Synthesizer, GoldenSet) {
        let (voice, _) = try Synthesizer.load(assetsDirectory: Repository.fixtures.path, modelName: Self.name)
        return (voice, try GoldenSet(path: Repository.goldens.appendingPathComponent(Self.name).path))
    }

    @Test func recordsEveryStageInPipelineOrder() throws {
        let (voice, golden) = try voiceAndGolden()
        var names: [String] = []
        try StageRunner(synthesizer: voice).run(try SynthesisInputs(golden: golden, configuration: voice.configuration),
                                                mode: .chained) { name, _ in names.append(name) }
        #expect(names == ["g", "enc_p.hidden", "m_p", "logs_p", "x_mask", "z_p",
                          "flow.flow_3", "flow.flow_2", "flow.flow_1", "flow.flow_0", "z", "dec.source",
                          "dec.conv_pre", "dec.up_0", "dec.up_1", "dec.up_2", "dec.up_3", "audio"])
    }

    @Test func teacherForcingRefusesAGoldenIntermediateOfTheWrongShape() throws {
        let (voice, golden) = try voiceAndGolden()
        let wrong = try golden.file.tensor("dec.up_1").permuted([0, 2, 1])  // (B, T, C) where (B, C, T) belongs
        // No index: its shape and sha256 check would refuse the rewritten tensor before the runner's own check.
        let damaged = GoldenSet(index: nil, file: try rewrittenWeights(golden.file, replacing: ["dec.up_1": wrong]))
        let inputs = try SynthesisInputs(golden: damaged, configuration: voice.configuration)
        let error = rvcError {
            try StageRunner(synthesizer: voice).run(inputs, mode: .teacherForced, golden: damaged) { _, _ in }
        }
        #expect(error == .goldenTensorShape(name: "dec.up_1", expected: [1, 5000, 8], actual: [1, 8, 5000]))
    }

    @Test func teacherForcingNeedsAGoldenSet() throws {
        let (voice, golden) = try voiceAndGolden()
        let inputs = try SynthesisInputs(golden: golden, configuration: voice.configuration)
        guard case .usage? = rvcError({ try StageRunner(synthesizer: voice).run(inputs, mode: .teacherForced) { _, _ in } }) else {
            Issue.record("expected a usage error")
            return
        }
    }

    @Test func refusesInputsOfAnotherVoice() throws {
        let (voice, _) = try voiceAndGolden()
        let other = try GoldenSet(path: Repository.goldens.appendingPathComponent("tiny-v1-48k-nof0").path)
        #expect(rvcError { _ = try SynthesisInputs(golden: other, configuration: voice.configuration) }
                == .goldenTensorShape(name: "phone", expected: [1, 40, 768], actual: [1, 40, 256]))
    }
}
