import Foundation

/// `SafeTensorsFile(bytes:)`, then every tensor through every typed reader (each refusing the dtypes it
/// does not read) and its raw bytes through XXH64, as the manifest check hashes them.
func fuzzSafeTensors(_ data: Data) throws {
    let file = try SafeTensorsFile(bytes: data, path: "fuzz.safetensors")
    readEveryTensor(file)
}

func readEveryTensor(_ file: SafeTensorsFile) {
    for key in file.keys {
        allowingLibraryErrors { _ = try file.withRawBytes(key) { XXH64.hexDigest($0) } }
        allowingLibraryErrors { _ = try file.tensor(key) }
        allowingLibraryErrors { _ = try file.int32Values(key) }
        allowingLibraryErrors { _ = try file.float64Values(key) }
        allowingLibraryErrors { _ = try file.int16Values(key) }
    }
}
