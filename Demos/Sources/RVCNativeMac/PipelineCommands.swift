import Foundation
import RVCNative

// The whole conversion's `run` on a pipeline golden set (dispatched from `runCommand` when the golden
// index's kind is "pipeline").

/// True when `run --inputs` names a golden set of kind "pipeline".
func inputsAreForPipeline(_ arguments: ArraySlice<String>) -> Bool {
    guard let position = arguments.firstIndex(of: "--inputs"), arguments.index(after: position) < arguments.endIndex,
          let golden = try? GoldenSet(path: arguments[arguments.index(after: position)]) else { return false }
    return golden.index?.kind == "pipeline"
}

/// `run` for a pipeline golden set: the voice NAME (`--model`), the content encoder (`--hubert`) and, for f0
/// voices, RMVPE (`--rmvpe`), with an index golden set the index (`--index`), every stage written in the golden set's layout.
func runPipelineCommand(_ arguments: ArraySlice<String>) throws {
    let options = try ParsedOptions(arguments, valueOptions: ["--assets", "--model", "--hubert", "--rmvpe", "--index", "--inputs", "--output"],
                                    flagOptions: ["--teacher-forced"])
    let output = try options.required("--output")
    let assets = try options.required("--assets")
    let inputsPath = try options.required("--inputs")
    let (synthesizer, _) = try Synthesizer.load(assetsDirectory: assets, modelName: try options.required("--model"))
    let encoder = try ContentEncoder.load(assetsDirectory: assets, modelName: try options.required("--hubert"))
    let rmvpe = try options.values["--rmvpe"].map { try RMVPE.load(assetsDirectory: assets, modelName: $0) }
    let index = try options.values["--index"].map { try IVFFlatIndex.load(assetsDirectory: assets, modelName: $0) }
    let golden = try GoldenSet(path: inputsPath)
    let extra = try PipelineGoldenExtra.load(goldenFolder: inputsPath)
    let mode: StageRunner.Mode = options.flags.contains("--teacher-forced") ? .teacherForced : .chained
    try writeCandidate(to: output, golden: golden, mode: mode, settings: ["\(extra.segments) segment(s)"],
                       nativeLayout: { golden.storedLayout(of: $0) }) { record in
        try PipelineStageRunner(synthesizer: synthesizer, contentEncoder: encoder, rmvpe: rmvpe, index: index)
            .run(golden: golden, extra: extra, mode: mode, record: record)
    }
}
