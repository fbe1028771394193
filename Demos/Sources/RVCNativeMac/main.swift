import Foundation
import RVCNative

// A thin command line over RVCNative: parse, call, print. Errors end the process with one line and exit
// code 2, for usage mistakes and unusable files alike, as `rvc-ios` does (which keeps 1 for a parity
// divergence, something this tool never judges).

reexecuteWithCPUsBLASKernelIfNeeded()  // before anything else: see BLASKernelSelection.swift

let overview = """
RVCNativeMac: run an exported RVC voice, the RMVPE pitch model, or the content encoder, in dependency-free Swift.

Usage:
  RVCNativeMac run --assets DIR --model NAME --inputs PATH --output FILE [--teacher-forced] [--pad-mode MODE]
  RVCNativeMac synthesize --assets DIR --model NAME --inputs PATH --output FILE [--chunk-frames N]
  RVCNativeMac f0 --assets DIR --model NAME --inputs PATH --output FILE [--pad-mode MODE] [--repeats N]
  RVCNativeMac features --assets DIR --model NAME --inputs PATH --output FILE [--version v1|v2]
  RVCNativeMac convert --assets DIR --model NAME --hubert NAME [--rmvpe NAME] [--index NAME] --input IN.wav --output OUT.wav
  RVCNativeMac blas-kernel [--verbose]
  RVCNativeMac help [COMMAND]
  RVCNativeMac COMMAND --help

Commands:
  run         Run every stage of the voice (or, for RMVPE inputs, of the pitch model) and write each
              intermediate the golden set names (a candidate file for `rvc-ios golden diff`).
  synthesize  Run the voice for audio only, decoding in time chunks to bound memory.
  f0          Run the RMVPE pitch model on 16 kHz audio for f0 only, timing each stage.
  features    Run the content encoder (HuBERT / ContentVec) on 16 kHz audio for RVC's v1 / v2 features.
  convert     Convert a 16 kHz WAV with a voice (the whole pipeline: pitch, features, retrieval, synthesis).
  blas-kernel Print the OpenBLAS kernel the matrix products run on (--verbose: and why).

"""

// Option lines more than one command's help shows, written once so they read the same everywhere.
let assetsOption = """
  --assets DIR      Folder holding NAME.manifest.json and the weights file it names.
"""

let helpOption = """
  -h, --help        Show this help.
"""

let runHelp = """
RVCNativeMac run: every stage of a voice, or of the RMVPE pitch model, each intermediate written for
comparison with a golden set.

Usage:
  RVCNativeMac run --assets DIR --model NAME --inputs PATH --output FILE [--teacher-forced] [--pad-mode MODE]

The inputs pick the model: an RMVPE golden set (index kind rmvpe), or a safetensors file holding `audio`
and no `phone`, runs the RMVPE export NAME (see `f0 --help`); a retrieval golden set (kind index) runs
the index export NAME (`rvc-ios export --index`) on its `feats`, blended at its index_rate (or
--index-rate); a content-encoder golden set (kind hubert) runs the content encoder NAME (`rvc-ios export
--hubert`) on its `audio`; a pipeline golden set (kind pipeline, `rvc-ios convert --golden`) runs the
whole conversion with the voice NAME, the content encoder --hubert NAME, RMVPE --rmvpe NAME and (for a
set made with an index) the index --index NAME, every random draw the golden set's; anything else runs the voice NAME.

Options:
\(assetsOption)
  --model NAME      The voice's or the RMVPE export's name (the manifest is DIR/NAME.manifest.json).
  --inputs PATH     A golden set folder (golden.safetensors + index.json) or a safetensors file. For a
                    voice, the inputs and noise as `synthesize` reads them; for RMVPE, `audio` as `f0`
                    reads it.
  --output FILE     The safetensors file to write.
  --teacher-forced  Feed each stage the golden set's tensors for its inputs instead of this run's own
                    outputs, so a wrong stage cannot hide behind an earlier one. Needs a golden set
                    with intermediates.
  --pad-mode MODE   RMVPE only: frame padding to a multiple of 32, reflect (RVC WebUI, Applio) or
                    constant (the rvc 0.3.5 package). Default: the golden set's, else the manifest's.
  --index-rate R    Index only: how much of the retrieved features the blend takes (0 to 1). Default:
                    the golden set's (RVC's default is 0.75).
\(helpOption)

Writes every intermediate and output the golden index names (all of them for a bare inputs file),
channels-last, each declared in __metadata__ as layout.<name>, with `producer`, `mode` (chained or
teacher-forced) and, for RMVPE, `pad_mode`.

"""

let synthesizeHelp = """
RVCNativeMac synthesize: the voice's audio only, with the decoder run over time chunks.

Usage:
  RVCNativeMac synthesize --assets DIR --model NAME --inputs PATH --output FILE [--chunk-frames N]

Options:
\(assetsOption)
  --model NAME      The voice's name (the manifest is DIR/NAME.manifest.json).
  --inputs PATH     A golden set folder (golden.safetensors + index.json) or a safetensors file with the
                    inputs and noise: phone, phone_lengths, sid, noise.z_p and, for f0 voices, pitch,
                    pitchf, noise.nsf, noise.nsf_phase (names and layouts as in docs/formats.md).
  --output FILE     The safetensors file to write.
  --chunk-frames N  Feature frames per decoder chunk (default 1000; 0 decodes in one piece).
\(helpOption)

Writes `audio` (B, samples, 1), layout BTC, and prints the time loading and synthesis took (wall and
CPU) and the process's peak memory.

"""

struct UsageError: Error {
    let message: String
}

/// `--name value` options and `--flag` switches after the command word.
struct ParsedOptions {
    var values: [String: String] = [:]
    var flags: Set<String> = []

    init(_ arguments: ArraySlice<String>, valueOptions: Set<String>, flagOptions: Set<String>) throws {
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            if valueOptions.contains(argument) {
                guard let value = remaining.popFirst(), !value.hasPrefix("--") else {
                    throw UsageError(message: "\(argument) needs a value.")
                }
                guard values[argument] == nil else { throw UsageError(message: "\(argument) is given twice.") }
                values[argument] = value
            } else if flagOptions.contains(argument) {
                flags.insert(argument)
            } else {
                throw UsageError(message: "Unknown argument `\(argument)`.")
            }
        }
    }

    func required(_ name: String) throws -> String {
        guard let value = values[name] else { throw UsageError(message: "Missing \(name).") }
        return value
    }

    /// The whole-number option `name`, `defaultValue` when it is not given.
    func wholeNumber(_ name: String, defaultValue: Int, minimum: Int) throws -> Int {
        guard let text = values[name] else { return defaultValue }
        guard let value = Int(text), value >= minimum else {
            throw UsageError(message: "\(name) must be a whole number >= \(minimum).")
        }
        return value
    }
}

func loadVoiceAndInputs(_ options: ParsedOptions) throws -> (Synthesizer, GoldenSet, SynthesisInputs) {
    let (synthesizer, _) = try Synthesizer.load(assetsDirectory: try options.required("--assets"),
                                                modelName: try options.required("--model"))
    let golden = try GoldenSet(path: try options.required("--inputs"))
    let inputs = try SynthesisInputs(golden: golden, configuration: synthesizer.configuration)
    return (synthesizer, golden, inputs)
}

func runCommand(_ arguments: ArraySlice<String>) throws {
    // The inputs are read first, so a damaged golden set is refused as itself rather than taken for a voice's
    // inputs (each test below sees an unreadable set as "not mine").
    if let position = arguments.firstIndex(of: "--inputs"), arguments.index(after: position) < arguments.endIndex {
        _ = try GoldenSet(path: arguments[arguments.index(after: position)])
    }
    // The golden index's kind picks the model: RMVPE sets go to RMVPECommands.swift.
    if inputsAreForRMVPE(arguments) { return try runRMVPECommand(arguments) }
    if inputsAreForIndex(arguments) { return try runIndexCommand(arguments) }  // IndexCommands.swift
    if inputsAreForContentEncoder(arguments) { return try runContentEncoderCommand(arguments) }  // ContentEncoderCommands.swift
    if inputsAreForPipeline(arguments) { return try runPipelineCommand(arguments) }  // PipelineCommands.swift
    let options = try ParsedOptions(arguments, valueOptions: ["--assets", "--model", "--inputs", "--output"],
                                    flagOptions: ["--teacher-forced"])
    let output = try options.required("--output")
    let (synthesizer, golden, inputs) = try loadVoiceAndInputs(options)
    let mode: StageRunner.Mode = options.flags.contains("--teacher-forced") ? .teacherForced : .chained

    try writeCandidate(to: output, golden: golden, mode: mode, nativeLayout: VoiceTensors.nativeLayout(of:)) { record in
        try StageRunner(synthesizer: synthesizer).run(inputs, mode: mode, golden: golden, record: record)
    }
}

/// What every file this tool writes names as its `producer`.
let producer = "RVCNative (Swift, rvc-ios-tools Demos)"

/// `run`'s output for either model, a candidate file for `rvc-ios golden diff`: every tensor the golden
/// index names as an intermediate or output (every tensor for a bare inputs file), in the runner's native
/// layout declared as `layout.<name>`, with `producer`, `mode` and `metadata` in `__metadata__`.
/// `runStages(record)` runs the model, handing `record` each stage's output; `settings` are printed after
/// the mode.
func writeCandidate(to output: String, golden: GoldenSet, mode: StageRunner.Mode, metadata: [String: String] = [:],
                    settings: [String] = [], nativeLayout: @escaping (String) -> String?,
                    runStages: ((String, Tensor) throws -> Void) throws -> Void) throws {
    let wanted: Set<String>? = golden.index.map { index in
        Set(index.tensors.filter { $0.role == "intermediate" || $0.role == "output" }.map(\.name))
    }
    var writer = SafeTensorsWriter()
    writer.metadata["producer"] = producer
    writer.metadata["mode"] = mode.rawValue
    writer.metadata.merge(metadata) { _, new in new }
    let started = Date()
    try runStages { name, tensor in
        guard wanted?.contains(name) ?? true, let layout = nativeLayout(name) else { return }
        writer.add(name, tensor)
        writer.metadata["layout.\(name)"] = layout
    }
    let seconds = Date().timeIntervalSince(started)
    try writer.write(to: output)
    let described = ([mode.rawValue] + settings).joined(separator: ", ")
    print("Wrote \(writer.names.count) tensors (\(described)) to \(output) in \(String(format: "%.2f", seconds)) s.")
}

func synthesizeCommand(_ arguments: ArraySlice<String>) throws {
    let options = try ParsedOptions(arguments, valueOptions: ["--assets", "--model", "--inputs", "--output", "--chunk-frames"],
                                    flagOptions: [])
    let output = try options.required("--output")
    let chunkFrames = try options.wholeNumber("--chunk-frames", defaultValue: 1000, minimum: 0)
    let loadStart = Date()
    let (synthesizer, _, inputs) = try loadVoiceAndInputs(options)
    let runStart = Date()
    let cpuStart = processCPUSeconds()
    let audio = try synthesizer.synthesize(inputs, decoderChunkFrames: chunkFrames)
    let runSeconds = Date().timeIntervalSince(runStart)
    let cpuSeconds = processCPUSeconds() - cpuStart
    var writer = SafeTensorsWriter()
    writer.metadata["producer"] = producer
    writer.metadata["layout.audio"] = "BTC"
    writer.add("audio", audio)
    try writer.write(to: output)
    let seconds = Double(audio.frameCount) / Double(synthesizer.configuration.sampleRate)
    let peak = peakResidentMegabytes().map { String(format: ", peak memory %.0f MB", $0) } ?? ""
    print(String(format: "Wrote %.2f s of audio to %@: load %.2f s, synthesis %.2f s (CPU %.2f s)%@.",
                 seconds, output, runStart.timeIntervalSince(loadStart), runSeconds, cpuSeconds, peak))
}

/// CPU seconds (user + system, all threads) this process has used.
func processCPUSeconds() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// Peak resident memory in MB. On Linux from /proc/self/status (VmHWM): getrusage's ru_maxrss there also
/// counts the parent's memory when the process was started by fork and exec.
func peakResidentMegabytes() -> Double? {
    #if os(Linux)
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
    return kilobytes / 1024
    #else
    var usage = rusage()
    getrusage(RUSAGE_SELF, &usage)
    return Double(usage.ru_maxrss) / (1024 * 1024)  // bytes on Darwin
    #endif
}

func main() -> Int32 {
    let arguments = CommandLine.arguments.dropFirst()
    let helpWords: Set<String> = ["-h", "--help"]
    do {
        guard let command = arguments.first, !helpWords.contains(command) else {
            print(overview, terminator: "")
            return arguments.isEmpty ? 2 : 0
        }
        let rest = arguments.dropFirst()
        let wantsHelp = rest.contains { helpWords.contains($0) }
        switch command {
        case "run":
            if wantsHelp { print(runHelp, terminator: ""); return 0 }
            try runCommand(rest)
        case "f0":
            if wantsHelp { print(f0Help, terminator: ""); return 0 }
            try f0Command(rest)
        case "synthesize":
            if wantsHelp { print(synthesizeHelp, terminator: ""); return 0 }
            try synthesizeCommand(rest)
        case "features":
            if wantsHelp { print(featuresHelp, terminator: ""); return 0 }
            try featuresCommand(rest)
        case "convert":
            if wantsHelp { print(convertHelp, terminator: ""); return 0 }
            try convertCommand(rest)  // ConvertCommand.swift
        case "blas-kernel":
            if wantsHelp { print(blasKernelHelp, terminator: ""); return 0 }
            try blasKernelCommand(rest)
        case "help":
            switch rest.first {
            case "run": print(runHelp, terminator: "")
            case "synthesize": print(synthesizeHelp, terminator: "")
            case "f0": print(f0Help, terminator: "")
            case "features": print(featuresHelp, terminator: "")
            case "convert": print(convertHelp, terminator: "")
            case "blas-kernel": print(blasKernelHelp, terminator: "")
            default: print(overview, terminator: "")
            }
        default:
            throw UsageError(message: "Unknown command `\(command)`; use run, synthesize, f0, features, convert or blas-kernel (see --help).")
        }
        return 0
    } catch let error as UsageError {
        FileHandle.standardError.write(Data("error: \(error.message) See `RVCNativeMac --help`.\n".utf8))
        return 2
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        return 2
    }
}

exit(main())
