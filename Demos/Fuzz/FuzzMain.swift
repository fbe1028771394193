import Foundation

// libFuzzer's entry points for every reader of files that come from strangers. All targets live in one binary,
// compiled by scripts/fuzz.sh together with the library's sources (so internal readers are reachable), because
// each instrumented build of the library takes minutes; RVC_FUZZ_TARGET picks the target.

/// One reader under test. `run` throws only the library's error enums for a malformed input; anything else it
/// throws is a finding, as is a trap, a hang, an out-of-bounds access or an allocation over libFuzzer's limit.
struct FuzzTarget {
    let name: String
    let run: (Data) throws -> Void
}

let fuzzTargets: [FuzzTarget] = [
    FuzzTarget(name: "safetensors", run: fuzzSafeTensors),
    FuzzTarget(name: "manifest", run: fuzzManifests),
    FuzzTarget(name: "golden-index", run: fuzzGoldenSet),
    FuzzTarget(name: "wav", run: fuzzWAV),
    FuzzTarget(name: "index-export", run: fuzzIndexExport),
    FuzzTarget(name: "weights", run: fuzzWeightLoading),
]

/// The target RVC_FUZZ_TARGET names; `list` prints every name, one a line, and exits.
let selectedTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["RVC_FUZZ_TARGET"] ?? ""
    if name == "list" {
        print(fuzzTargets.map(\.name).joined(separator: "\n"))
        exit(0)
    }
    guard let target = fuzzTargets.first(where: { $0.name == name }) else {
        FileHandle.standardError.write(Data(
            "RVC_FUZZ_TARGET must name a target: \(fuzzTargets.map(\.name).joined(separator: ", ")) (or `list`).\n".utf8))
        exit(2)
    }
    return target
}()

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>,
                             _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    _ = selectedTarget.name
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    // The input outlives this call, so it is read in place: copying megabyte inputs costs more than reading them.
    let data = bytes.map { Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: $0), count: count, deallocator: .none) } ?? Data()
    do {
        try selectedTarget.run(data)
    } catch {
        expectLibraryError(error)
    }
    return 0
}

/// RVC_FUZZ_EXPLAIN=1 prints how each input ends (the error's sentence, or what was loaded), to see how far
/// a seed gets into a reader.
let explaining = ProcessInfo.processInfo.environment["RVC_FUZZ_EXPLAIN"] == "1"

func explain(_ text: @autoclosure () -> String) {
    if explaining { FileHandle.standardError.write(Data("\(text())\n".utf8)) }
}

/// A malformed file must be one of the library's error enums, each printing a sentence; any other error
/// (a raw DecodingError, a Foundation error) reaching the caller is a finding.
func expectLibraryError(_ error: Error) {
    let sentence: String
    switch error {
    case let error as RVCError: sentence = error.description
    case let error as RMVPEError: sentence = error.description
    case let error as IndexError: sentence = error.description
    case let error as ContentEncoderError: sentence = error.description
    default: fatalError("a reader threw \(type(of: error)), not one of the library's errors: \(error)")
    }
    precondition(!sentence.isEmpty, "an error printed no sentence: \(error)")
    explain(sentence)
}

/// `body`, where the library's errors are an expected outcome, not the end of the input's run.
func allowingLibraryErrors(_ body: () throws -> Void) {
    do {
        try body()
    } catch {
        expectLibraryError(error)
    }
}

/// The two files of a fuzz input that pairs a JSON file with a safetensors file: the bytes before the first
/// NUL (which JSON text cannot hold) and the bytes after it (nil when there is no NUL).
func splitAtFirstNUL(_ data: Data) -> (json: Data, safetensors: Data?) {
    guard let separator = data.firstIndex(of: 0) else { return (data, nil) }
    return (data[data.startIndex..<separator], data[(separator + 1)...])
}
