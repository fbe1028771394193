import Foundation
import RVCNative

// `convert`: a WAV in, the voice's WAV out, through the public `Converter`.

let convertHelp = """
RVCNativeMac convert: the whole RVC conversion (upstream's Pipeline.pipeline, rvc 0.3.5, CPU windowing)
from exported files: a WAV in, the voice's int16 WAV out.

Usage:
  RVCNativeMac convert --assets DIR --model NAME --hubert NAME [--rmvpe NAME] [--index NAME]
                       --input IN.wav --output OUT.wav [--pitch N] [--index-rate R] [--protect P]
                       [--rms-mix-rate R] [--sid N] [--seed N] [--noise FILE] [--pad-mode constant|reflect]
                       [--keep-loaded]

Options:
\(assetsOption)
  --model NAME      The voice (rvc-ios export).
  --hubert NAME     The content encoder (rvc-ios export --hubert).
  --rmvpe NAME      RMVPE (rvc-ios export --rmvpe); needed by voices with pitch.
  --index NAME      The retrieval index (rvc-ios export --index); none by default.
  --input IN.wav    8/16/24/32-bit PCM or 32/64-bit float WAV (also WAVE_FORMAT_EXTENSIBLE), mono or
                    stereo (mixed as upstream's ffmpeg mixes: (L+R)/sqrt(2)), 1 kHz to 768 kHz. Other
                    rates than 16 kHz are resampled to 16 kHz by a Kaiser-windowed sinc (flat to 0.92 of
                    the lower Nyquist, 120 dB stopband from Nyquist, zero delay; the reference uses soxr
                    HQ, so only 16 kHz input replays the reference exactly).
  --output OUT.wav  Written as mono 16-bit PCM at the voice's rate.
  --pitch N         Semitones (default 0).   --index-rate R  0..1 (default 0.75).
  --protect P       0..0.5 (default 0.33).   --rms-mix-rate R 0..1 (default 0.25).
  --sid N           Speaker (default 0).     --seed N        The synthesizer's draws (default 0).
  --noise FILE      A safetensors file of per-segment draws to replay a run: segment.K.noise.z_p
                    (1, inter, T), segment.K.noise.nsf (1, T*upp, 1), segment.K.noise.nsf_phase (1, 1),
                    float32 (a golden set's `.noise.` tensors, or the upstream capture's noise.safetensors).
                    Shapes are checked; a draw it lacks comes from --seed (this package's generator,
                    not numpy's).
  --pad-mode MODE   RMVPE's log-mel padding: constant (rvc 0.3.5, the default) or reflect (Applio).
  --keep-loaded     Load all four networks before converting and keep them (`Converter`, as an app
                    converting many clips does). By default RMVPE is loaded, runs pitch and is dropped
                    before the others are loaded (`Converter.convertOnce`): the same audio and loading
                    time, a lower peak memory. Either way every file is checked before any work.
\(helpOption)

"""

func convertCommand(_ arguments: ArraySlice<String>) throws {
    let options = try ParsedOptions(arguments, valueOptions: [
        "--assets", "--model", "--hubert", "--rmvpe", "--index", "--input", "--output", "--pitch", "--index-rate",
        "--protect", "--rms-mix-rate", "--sid", "--seed", "--pad-mode", "--noise",
    ], flagOptions: ["--keep-loaded"])
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
    settings.noise = try options.values["--noise"].map { try RecordedDraws(path: $0) }
    let input = try options.required("--input")
    let output = try options.required("--output")
    let started = Date()
    let recording = try WAVFile.read(path: input)
    if recording.channels != 1 || recording.sampleRate != 16000 {
        print("Read \(input): \(recording.sampleRate) Hz, \(recording.channels == 2 ? "stereo" : "mono"), \(recording.encoding)"
              + (recording.channels == 2 ? "; mixed to mono" : "")
              + (recording.sampleRate != 16000 ? "; resampled to 16000 Hz" : "") + ".")
    }
    let (assets, voice, hubert) = (try options.required("--assets"), try options.required("--model"),
                                   try options.required("--hubert"))
    let samples = recording.mixedToMono()
    // Load is the reading before converting (the WAV, and checking and building the networks, which the
    // one-shot path does between its stages); conversion is the rest.
    let audio: ConvertedAudio
    let loadSeconds: Double
    if options.flags.contains("--keep-loaded") {
        let converter = try Converter(assets: assets, voice: voice, hubert: hubert, rmvpe: options.values["--rmvpe"],
                                      index: options.values["--index"])
        loadSeconds = Date().timeIntervalSince(started)
        audio = try converter.convert(samples: samples, sampleRate: recording.sampleRate, options: settings)
    } else {
        let read = Date().timeIntervalSince(started)
        audio = try Converter.convertOnce(assets: assets, voice: voice, hubert: hubert, rmvpe: options.values["--rmvpe"],
                                          index: options.values["--index"], samples: samples,
                                          sampleRate: recording.sampleRate, options: settings)
        loadSeconds = read + audio.seconds.loading
    }
    try WAVFile.writeMono16Bit(audio.samples, sampleRate: audio.sampleRate, path: output)
    let peak = peakResidentMegabytes().map { String(format: ", peak memory %.0f MB", $0) } ?? ""
    print(String(format: "Wrote %@ (%.2f s at %d Hz): load %.2f s, conversion %.2f s%@.", output,
                 Double(audio.samples.count) / Double(audio.sampleRate), audio.sampleRate,
                 loadSeconds, Date().timeIntervalSince(started) - loadSeconds, peak))
    let t = audio.seconds
    print(String(format: "stages: pitch %.3f s, features %.3f s, retrieval %.3f s, synthesizer %.3f s, signal %.3f s",
                 t.pitch, t.contentFeatures, t.retrieval, t.synthesizer, t.signal))
}
