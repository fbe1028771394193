import Foundation

/// `WAVFile.read(bytes:)` (every encoding it reads), then the mono mix the pipeline takes.
func fuzzWAV(_ data: Data) throws {
    let audio = try WAVFile.read(bytes: data, path: "fuzz.wav")
    precondition(audio.samples.count <= data.count, "more samples than the file has bytes")
    _ = audio.mixedToMono()
}
