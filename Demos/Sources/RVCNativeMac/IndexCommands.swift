import Foundation
import RVCNative

// The retrieval index's `run` (dispatched from `runCommand` when the golden index's kind is "index").

/// True when `run --inputs` names a golden set of kind "index".
func inputsAreForIndex(_ arguments: ArraySlice<String>) -> Bool {
    guard let position = arguments.firstIndex(of: "--inputs"), arguments.index(after: position) < arguments.endIndex,
          let golden = try? GoldenSet(path: arguments[arguments.index(after: position)]) else { return false }
    return golden.index?.kind == "index"
}

/// `run` for an index: every stage written with its layout (list numbers and ids as int32), then the time
/// loading and each stage took.
func runIndexCommand(_ arguments: ArraySlice<String>) throws {
    let options = try ParsedOptions(arguments, valueOptions: ["--assets", "--model", "--inputs", "--output", "--index-rate"],
                                    flagOptions: ["--teacher-forced"])
    let output = try options.required("--output")
    let inputsPath = try options.required("--inputs")
    let loadStart = Date()
    let index = try IVFFlatIndex.load(assetsDirectory: try options.required("--assets"), modelName: try options.required("--model"))
    let loadSeconds = Date().timeIntervalSince(loadStart)
    let golden = try GoldenSet(path: inputsPath)
    if let kind = golden.index?.kind, kind != "index" { throw IndexError.goldenKind(path: inputsPath, found: kind) }
    let indexRate: Double
    if let text = options.values["--index-rate"] {
        guard let value = Double(text), (0...1).contains(value) else {
            throw UsageError(message: "--index-rate must be a number from 0 to 1, not `\(text)`.")
        }
        indexRate = value
    } else {
        indexRate = try IndexGoldenExtra.load(goldenFolder: inputsPath).indexRate
    }
    let feats = try golden.tensor("feats", layout: "BTC")
    let mode: StageRunner.Mode = options.flags.contains("--teacher-forced") ? .teacherForced : .chained

    var writer = SafeTensorsWriter()
    writer.metadata["producer"] = producer
    writer.metadata["mode"] = mode.rawValue
    let timings = try IndexStageRunner(index: index).run(feats: feats, indexRate: indexRate, mode: mode, golden: golden) { name, value in
        writer.metadata["layout.\(name)"] = IndexTensors.layout(of: name)
        switch value {
        case let .float(tensor): writer.add(name, tensor)
        case let .integers(shape, values): writer.add(name, int32Values: values, shape: shape)
        }
    }
    try writer.write(to: output)
    let total = timings.map(\.seconds).reduce(0, +)
    let c = index.configuration
    print(String(format: "Wrote %d tensors (%@, %d frames against %d x %d, %d lists, nprobe %d) to %@: load %.3f s, "
                 + "search and blend %.4f s.", writer.names.count, mode.rawValue, feats.shape[1], c.ntotal, c.d, c.nlist,
                 c.nprobe, output, loadSeconds, total))
    print("stages: " + timings.map { String(format: "%@ %.4f s", $0.stage, $0.seconds) }.joined(separator: ", "))
}
