import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A regular file open for reading at offsets (`pread`), closed when the last reference to it goes.
///
/// This is how weights files are read: each tensor's bytes go straight from the file into the array that keeps
/// them, so loading a network holds its floats and not, beside them, its whole file (Foundation's
/// `.mappedIfSafe` copies the whole file into memory on Linux). Not a memory map either: a file truncated
/// under a map kills the process with SIGBUS when the lost pages are touched, where a short `pread` is an
/// error to report. Reads are positional, so threads may share one (the manifest check hashes tensors in
/// parallel).
final class ReadOnlyFile: @unchecked Sendable {
    let path: String
    /// The size when opened; a read past what the file holds now fails.
    let byteCount: Int
    private let descriptor: Int32

    init(path: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw RVCError.fileUnreadable(path: path, reason: systemErrorText(errno)) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            let code = errno
            close(descriptor)
            throw RVCError.fileUnreadable(path: path, reason: systemErrorText(code))
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            close(descriptor)
            throw RVCError.fileUnreadable(path: path, reason: "it is not a regular file")
        }
        self.path = path
        self.descriptor = descriptor
        byteCount = Int(status.st_size)
    }

    deinit {
        close(descriptor)
    }

    /// Fills `buffer` with the file's bytes from `offset`. A file that ends first (it shrank after it was
    /// opened and its header checked) is an error, never a partly filled buffer.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        guard let start = buffer.baseAddress else { return }
        var done = 0
        while done < buffer.count {
            let count = pread(descriptor, start + done, buffer.count - done, off_t(offset + done))
            if count > 0 {
                done += count
            } else if count < 0 && errno == EINTR {
                continue
            } else if count == 0 {
                throw RVCError.fileUnreadable(
                    path: path, reason: "it ends at byte \(offset + done), short of the \(byteCount) bytes it held "
                        + "when opened: it changed while it was read")
            } else {
                throw RVCError.fileUnreadable(path: path, reason: systemErrorText(errno))
            }
        }
    }

    /// `count` bytes from `offset` (a header, a small tensor).
    func bytes(at offset: Int, count: Int) throws -> Data {
        var data = Data(count: count)
        try data.withUnsafeMutableBytes { try read(into: $0, at: offset) }
        return data
    }
}

/// The C library's sentence for an `errno` value ("No such file or directory").
func systemErrorText(_ code: Int32) -> String {
    String(cString: strerror(code))
}
