import Foundation
import RVCNative

// `convert`: a 16 kHz WAV in, the voice's WAV out, through the public `Converter`.

let convertHelp = """
RVCNativeMac convert: the whole RVC conversion (upstream's Pipeline.pipeline, rvc 0.3.5, CPU windowing)
from exported files, 16 kHz mono 16-bit WAV in, the voice's int16 WAV out.

Usage:
  RVCNativeMac convert --assets DIR --model NAME --hubert NAME [--rmvpe NAME] [--index NAME]
                       --input IN.wav --output OUT.wav [--pitch N] [--index-rate R] [--protect P]
                       [--rms-mix-rate R] [--sid N] [--seed N] [--pad-mode constant|reflect]

Options:
\(assetsOption)
  --model NAME      The voice (rvc-ios export).
  --hubert NAME     The content encoder (rvc-ios export --hubert).
  --rmvpe NAME      RMVPE (rvc-ios export --rmvpe); needed by voices with pitch.
  --index NAME      The retrieval index (rvc-ios export --index); none by default.
  --input IN.wav    Mono 16-bit PCM at 16 kHz (e.g. `sox in.wav -r 16000 -c 1 -b 16 in16k.wav`).
  --output OUT.wav  Written as mono 16-bit PCM at the voice's rate.
  --pitch N         Semitones (default 0).   --index-rate R  0..1 (default 0.75).
  --protect P       0..0.5 (default 0.33).   --rms-mix-rate R 0..1 (default 0.25).
  --sid N           Speaker (default 0).     --seed N        The synthesizer's draws (default 0).
  --pad-mode MODE   RMVPE's log-mel padding: constant (rvc 0.3.5, the default) or reflect (Applio).
\(helpOption)

"""

func convertCommand(_ arguments: ArraySlice<String>) throws {
    let options = try ParsedOptions(arguments, valueOptions: [
        "--assets", "--model", "--hubert", "--rmvpe", "--index", "--input", "--output", "--pitch", "--index-rate",
        "--protect", "--rms-mix-rate", "--sid", "--seed", "--pad-mode",
    ], flagOptions: [])
    func number(_ name: String, _ defaultValue: Double) throws -> Double {
        guard let text = options.values[name] else { return defaultValue }
        guard let value = Double(text) else { throw UsageError(message: "\(name) must be a number, not `\(text)`.") }
        return value
    }
    var settings = ConversionOptions()
    settings.pitch = try number("--pitch", settings.pitch)
    settings.indexRate = try number("--index-rate", settings.indexRate)
    settings.protect = try number("--protect", settings.protect)
    settings.rmsMixRate = try number("--rms-mix-rate", settings.rmsMixRate)
    settings.sid = try options.wholeNumber("--sid", defaultValue: 0, minimum: 0)
    settings.seed = UInt64(try options.wholeNumber("--seed", defaultValue: 0, minimum: 0))
    if let mode = options.values["--pad-mode"] {
        guard let parsed = FramePadMode(rawValue: mode) else {
            throw UsageError(message: "--pad-mode must be constant or reflect, not `\(mode)`.")
        }
        settings.rmvpePadMode = parsed
    }
    let output = try options.required("--output")
    let started = Date()
    let converter = try Converter(assets: try options.required("--assets"), voice: try options.required("--model"),
                                  hubert: try options.required("--hubert"), rmvpe: options.values["--rmvpe"],
                                  index: options.values["--index"])
    let (samples, rate) = try WAVFile.readMono16Bit(path: try options.required("--input"))
    let loaded = Date()
    let audio = try converter.convert(samples: samples, sampleRate: rate, options: settings)
    try WAVFile.writeMono16Bit(audio.samples, sampleRate: audio.sampleRate, path: output)
    print(String(format: "Wrote %@ (%.2f s at %d Hz): load %.2f s, conversion %.2f s.", output,
                 Double(audio.samples.count) / Double(audio.sampleRate), audio.sampleRate,
                 loaded.timeIntervalSince(started), Date().timeIntervalSince(loaded)))
}
