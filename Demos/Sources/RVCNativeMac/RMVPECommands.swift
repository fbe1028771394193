import Foundation
import RVCNative

// The RMVPE pitch model's commands: `run` on an RMVPE golden set (dispatched from `runCommand` by the
// golden index's kind) and `f0` (audio -> f0 with a per-stage timing, what the benchmark runs).

let f0Help = """
RVCNativeMac f0: RMVPE pitch extraction, 16 kHz audio -> f0 (Hz per 10 ms frame, 0 = unvoiced).

Usage:
  RVCNativeMac f0 --assets DIR --model NAME --inputs PATH --output FILE [--pad-mode MODE] [--repeats N]

Options:
  --assets DIR      Folder holding NAME.manifest.json (from `rvc-ios export --rmvpe`) and its weights.
  --model NAME      The exported RMVPE model's name (usually rmvpe).
  --inputs PATH     A golden set folder of kind rmvpe, or a safetensors file with `audio`: (samples) or
                    (batch, samples) float32 at 16 kHz.
  --output FILE     The safetensors file to write `f0` (batch, frames) into, layout BT.
  --pad-mode MODE   Frame padding to a multiple of 32: reflect (RVC WebUI, Applio) or constant (the rvc
                    0.3.5 package). Default: the golden set's, else the manifest's.
  --repeats N       Run N times and report the fastest (default 1).
\(helpOption)

Prints the time loading took and, for the fastest run, each stage's (log-mel, U-Net, cnn, BiGRU,
linear + sigmoid, decoding), wall clock and CPU.

"""

/// True when `run --inputs` names an RMVPE golden set (index kind "rmvpe") or a bare file holding `audio`
/// but no voice inputs.
func inputsAreForRMVPE(_ arguments: ArraySlice<String>) -> Bool {
    guard let position = arguments.firstIndex(of: "--inputs"), arguments.index(after: position) < arguments.endIndex,
          let golden = try? GoldenSet(path: arguments[arguments.index(after: position)]) else { return false }
    if let index = golden.index { return index.kind == "rmvpe" }
    return golden.contains("audio") && !golden.contains("phone")
}

/// `audio` as (batch, samples), and the padding the golden set was recorded with (nil for a bare file).
func loadAudio(_ path: String) throws -> (audio: Tensor, padMode: FramePadMode?) {
    let golden = try GoldenSet(path: path)
    if let index = golden.index, index.kind != "rmvpe" { throw RMVPEError.goldenKind(path: path, found: index.kind) }
    var audio = try golden.storedTensor("audio")
    if audio.rank == 1 { audio = audio.reshaped([1, audio.count]) }
    guard audio.rank == 2 else {
        throw RVCError.inputInvalid(name: "audio", reason: "shape \(audio.shape) is not (samples) or (batch, samples)")
    }
    let padMode = golden.index == nil ? nil : try RMVPEGoldenExtra.load(goldenFolder: path).padMode
    return (audio, try padMode.map(parsePadMode))
}

func parsePadMode(_ text: String) throws -> FramePadMode {
    guard let mode = FramePadMode(rawValue: text) else {
        throw UsageError(message: "--pad-mode must be reflect or constant, not `\(text)`.")
    }
    return mode
}

/// `run` for RMVPE: every stage, each golden-named tensor written channels-last with `layout.<name>`.
func runRMVPECommand(_ arguments: ArraySlice<String>) throws {
    let options = try ParsedOptions(arguments, valueOptions: ["--assets", "--model", "--inputs", "--output", "--pad-mode"],
                                    flagOptions: ["--teacher-forced"])
    let output = try options.required("--output")
    let inputsPath = try options.required("--inputs")
    let rmvpe = try RMVPE.load(assetsDirectory: try options.required("--assets"), modelName: try options.required("--model"))
    let golden = try GoldenSet(path: inputsPath)
    let (audio, recordedPadMode) = try loadAudio(inputsPath)
    let padMode = try options.values["--pad-mode"].map(parsePadMode) ?? recordedPadMode ?? rmvpe.defaultPadMode
    let mode: StageRunner.Mode = options.flags.contains("--teacher-forced") ? .teacherForced : .chained

    try writeCandidate(to: output, golden: golden, mode: mode, metadata: ["pad_mode": padMode.rawValue],
                       settings: ["\(padMode.rawValue) padding"], nativeLayout: RMVPETensors.nativeLayout(of:)) { record in
        try RMVPEStageRunner(rmvpe: rmvpe).run(audio: audio, padMode: padMode, mode: mode, golden: golden, record: record)
    }
}

func f0Command(_ arguments: ArraySlice<String>) throws {
    let options = try ParsedOptions(arguments, valueOptions: ["--assets", "--model", "--inputs", "--output", "--pad-mode",
                                                              "--repeats"], flagOptions: [])
    let output = try options.required("--output")
    let repeats = try options.wholeNumber("--repeats", defaultValue: 1, minimum: 1)
    let loadStart = Date()
    let rmvpe = try RMVPE.load(assetsDirectory: try options.required("--assets"), modelName: try options.required("--model"))
    let loadSeconds = Date().timeIntervalSince(loadStart)
    let (audio, recordedPadMode) = try loadAudio(try options.required("--inputs"))
    let padMode = try options.values["--pad-mode"].map(parsePadMode) ?? recordedPadMode ?? rmvpe.defaultPadMode

    var best: [(stage: String, wall: Double, cpu: Double)] = []
    var f0 = Tensor(zeros: [0, 0])
    for _ in 0..<repeats {
        var laps: [(stage: String, wall: Double, cpu: Double)] = []
        var (wall, cpu) = (Date(), processCPUSeconds())
        func lap(_ stage: String) {
            let (nowWall, nowCPU) = (Date(), processCPUSeconds())
            laps.append((stage, nowWall.timeIntervalSince(wall), nowCPU - cpu))
            (wall, cpu) = (nowWall, nowCPU)
        }
        // RMVPE.f0, stage by stage.
        let mel = try rmvpe.melSpectrogram(audio)
        lap("log-mel")
        let padded = try rmvpe.padFrames(mel, mode: padMode)
        let unet = rmvpe.model.unet(E2E.melImage(padded))
        lap("U-Net")
        let cnn = rmvpe.model.cnnStage(unet)
        lap("cnn")
        let hidden = rmvpe.model.gruStage(cnn)
        lap("BiGRU")
        let salience = rmvpe.model.salienceStage(hidden).frames(0..<mel.frameCount)
        lap("linear + sigmoid")
        f0 = rmvpe.pitchDecoder.f0(salience)
        lap("decode")
        if best.isEmpty || laps.map(\.wall).reduce(0, +) < best.map(\.wall).reduce(0, +) { best = laps }
    }
    var writer = SafeTensorsWriter()
    writer.metadata["producer"] = producer
    writer.metadata["layout.f0"] = "BT"
    writer.add("f0", f0)
    try writer.write(to: output)
    let seconds = Double(audio.shape[1]) / Double(rmvpe.configuration.mel.sampleRate)
    let total = best.map(\.wall).reduce(0, +)
    let totalCPU = best.map(\.cpu).reduce(0, +)
    let peak = peakResidentMegabytes().map { String(format: ", peak memory %.0f MB", $0) } ?? ""
    print(String(format: "Wrote f0 of %.2f s of audio (%d frames, %@ padding) to %@: load %.2f s, f0 %.3f s (CPU %.3f s)%@.",
                 seconds, f0.shape[1], padMode.rawValue, output, loadSeconds, total, totalCPU, peak))
    print("stages: " + best.map { String(format: "%@ %.3f s", $0.stage, $0.wall) }.joined(separator: ", "))
}
