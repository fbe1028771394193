import Foundation

/// `SafeTensorsFile(bytes:)`, then every tensor through every typed reader (each refusing the dtypes it
/// does not read) and its raw bytes through XXH64, as the manifest check hashes them. The same bytes are
/// then read from a file (`SafeTensorsFile(path:)`, `pread` in chunks, as loading reads weights): it must
/// accept and refuse exactly what the in-memory reader does and give the same digests and values.
func fuzzSafeTensors(_ data: Data) throws {
    let memory = Result(catching: { try SafeTensorsFile(bytes: data, path: "fuzz.safetensors") })
    if case .success(let file) = memory { readEveryTensor(file) }
    try data.write(to: scratchFile)
    let disk = Result(catching: { try SafeTensorsFile(path: scratchFile.path) })
    switch (memory, disk) {
    case (.success(let inMemory), .success(let onDisk)):
        guard inMemory.keys == onDisk.keys else { fatalError("file-backed reader lists other tensors") }
        for key in inMemory.keys {
            let expected = try? inMemory.withRawBytes(key) { XXH64.digest($0) }
            guard expected == (try? onDisk.xxh64(key)) else { fatalError("file-backed XXH64 of \(key) differs") }
            let (a, b) = (try? inMemory.tensor(key), try? onDisk.tensor(key))
            guard a?.shape == b?.shape, a.map({ $0.data.map(\.bitPattern) }) == b.map({ $0.data.map(\.bitPattern) }) else {
                fatalError("file-backed values of \(key) differ")
            }
        }
        readEveryTensor(onDisk)
    case (.failure(let inMemory), .failure(let onDisk)):
        expectLibraryError(inMemory)
        expectLibraryError(onDisk)
    default:
        fatalError("the in-memory and file-backed readers disagree on whether the file is valid")
    }
}

/// One file per fuzzing process, rewritten for every input.
private let scratchFile = FileManager.default.temporaryDirectory
    .appendingPathComponent("rvc-fuzz-safetensors-\(getpid()).safetensors")

func readEveryTensor(_ file: SafeTensorsFile) {
    for key in file.keys {
        allowingLibraryErrors { _ = try file.withRawBytes(key) { XXH64.hexDigest($0) } }
        allowingLibraryErrors { _ = try file.xxh64(key) }
        allowingLibraryErrors { _ = try file.tensor(key) }
        allowingLibraryErrors { _ = try file.int32Values(key) }
        allowingLibraryErrors { _ = try file.float64Values(key) }
        allowingLibraryErrors { _ = try file.int16Values(key) }
    }
}
