import Foundation
import RVCNative

// The content encoder's commands: `run` on a content-encoder golden set (dispatched from `runCommand` by the
// golden index's kind "hubert") and `features` (16 kHz audio -> RVC's v1 / v2 features).

let featuresHelp = """
RVCNativeMac features: the content encoder (HuBERT / ContentVec), 16 kHz audio -> RVC's content features.

Usage:
  RVCNativeMac features --assets DIR --model NAME --inputs PATH --output FILE [--version v1|v2]
                        [--v1-convention rvc|applio] [--repeats N]

Options:
  --assets DIR      Folder holding NAME.manifest.json (from `rvc-ios export --hubert`) and its weights.
  --model NAME      The exported content encoder's name (e.g. hubert_base).
  --inputs PATH     A 16 kHz mono 16-bit WAV file, or a safetensors file (or golden set) with `audio`:
                    (samples) or (batch, samples) float32 at 16 kHz. Raw samples: nothing is normalised.
  --output FILE     The safetensors file to write `features` (batch, frames, channels) into, layout BTC.
  --version V       v2 (layer 12, 768-d; the default) or v1 (final_proj of layer 9, 256-d).
  --v1-convention C rvc (final_proj(layer 9), RVC WebUI's) or applio (final_proj(layer 12), Applio's).
  --repeats N       Run N times and report the fastest (default 1).
\(helpOption)

Frames: (samples - 400) / 320 + 1 (50 per second). Prints the time loading and the fastest run took and
the process's peak memory.

"""

/// True when `run --inputs` names a golden set of kind "hubert".
func inputsAreForContentEncoder(_ arguments: ArraySlice<String>) -> Bool {
    guard let position = arguments.firstIndex(of: "--inputs"), arguments.index(after: position) < arguments.endIndex,
          let golden = try? GoldenSet(path: arguments[arguments.index(after: position)]) else { return false }
    return golden.index?.kind == "hubert"
}

/// `run` for the content encoder: every stage, each golden-named tensor written channels-last with
/// `layout.<name>`.
func runContentEncoderCommand(_ arguments: ArraySlice<String>) throws {
    let options = try ParsedOptions(arguments, valueOptions: ["--assets", "--model", "--inputs", "--output"],
                                    flagOptions: ["--teacher-forced"])
    let output = try options.required("--output")
    let inputsPath = try options.required("--inputs")
    let encoder = try ContentEncoder.load(assetsDirectory: try options.required("--assets"),
                                          modelName: try options.required("--model"))
    let golden = try GoldenSet(path: inputsPath)
    if let kind = golden.index?.kind, kind != "hubert" { throw ContentEncoderError.goldenKind(path: inputsPath, found: kind) }
    let v1Layer = try ContentEncoderGoldenExtra.load(goldenFolder: inputsPath).v1Layer
    let audio = try golden.tensor("audio", layout: "BT")
    let mode: StageRunner.Mode = options.flags.contains("--teacher-forced") ? .teacherForced : .chained
    try writeCandidate(to: output, golden: golden, mode: mode, settings: v1Layer.map { ["v1 from layer \($0)"] } ?? [],
                       nativeLayout: ContentEncoderTensors.nativeLayout(of:)) { record in
        try ContentEncoderStageRunner(encoder: encoder).run(audio: audio, v1Layer: v1Layer, mode: mode, golden: golden,
                                                            record: record)
    }
}

/// (batch, samples) audio from a WAV file or a safetensors file / golden set holding `audio`.
func loadSpeech(_ path: String) throws -> Tensor {
    if path.lowercased().hasSuffix(".wav") {
        let (samples, rate) = try WAVFile.readMono16Bit(path: path)
        guard rate == 16000 else {
            throw RVCError.inputInvalid(name: path, reason: "it is \(rate) Hz; the content encoder reads 16 kHz "
                                        + "(`sox in.wav -r 16000 -c 1 -b 16 out.wav`)")
        }
        return Tensor(shape: [1, samples.count], data: samples)
    }
    let golden = try GoldenSet(path: path)
    var audio = try golden.storedTensor("audio")
    if audio.rank == 1 { audio = audio.reshaped([1, audio.count]) }
    guard audio.rank == 2 else {
        throw RVCError.inputInvalid(name: "audio", reason: "shape \(audio.shape) is not (samples) or (batch, samples)")
    }
    return audio
}

func featuresCommand(_ arguments: ArraySlice<String>) throws {
    let options = try ParsedOptions(arguments, valueOptions: ["--assets", "--model", "--inputs", "--output", "--version",
                                                              "--v1-convention", "--repeats"], flagOptions: [])
    let output = try options.required("--output")
    let repeats = try options.wholeNumber("--repeats", defaultValue: 1, minimum: 1)
    let version = options.values["--version"] ?? "v2"
    guard ["v1", "v2"].contains(version) else { throw UsageError(message: "--version must be v1 or v2, not `\(version)`.") }
    let convention = options.values["--v1-convention"] ?? "rvc"
    guard ["rvc", "applio"].contains(convention) else {
        throw UsageError(message: "--v1-convention must be rvc or applio, not `\(convention)`.")
    }
    let loadStart = Date()
    let encoder = try ContentEncoder.load(assetsDirectory: try options.required("--assets"),
                                          modelName: try options.required("--model"))
    let loadSeconds = Date().timeIntervalSince(loadStart)
    let audio = try loadSpeech(try options.required("--inputs"))
    let a = encoder.configuration.architecture
    let v1Layer: Int? = version == "v2" ? nil : (convention == "rvc" ? a.v1Layer : a.numLayers)
    var features = Tensor(zeros: [0])
    var best = Double.infinity
    for _ in 0..<repeats {
        let start = Date()
        features = try encoder.features(audio: audio, v1Layer: v1Layer)
        best = min(best, Date().timeIntervalSince(start))
    }
    var writer = SafeTensorsWriter()
    writer.metadata["producer"] = producer
    writer.metadata["layout.features"] = "BTC"
    writer.metadata["version"] = version
    writer.add("features", features)
    try writer.write(to: output)
    let peak = peakResidentMegabytes().map { String(format: ", peak memory %.0f MB", $0) } ?? ""
    print(String(format: "Wrote %@ features %@ of %.2f s of audio to %@: load %.2f s, features %.3f s (best of %d)%@.",
                 version, "\(features.shape)", Double(audio.shape[1]) / 16000, output, loadSeconds, best, repeats, peak))
}
