import Foundation
#if canImport(Accelerate)
import Accelerate
#else
import COpenBLAS
#endif

/// Which OpenBLAS kernel runs the matrix products (`BLAS.swift`), and which one to force when OpenBLAS
/// fell back to a generic kernel on a CPU it does not recognise.
///
/// Debian's OpenBLAS 0.3.21 (built with DYNAMIC_ARCH) picks its kernel from the CPU model when the library
/// loads. On CPUs newer than its tables (some AVX-512 Xeons) it falls back to "Prescott", an SSE3 kernel:
/// sgemm at 66 GFLOP/s instead of 219 with `OPENBLAS_CORETYPE=SkylakeX`, and the whole port at a third of
/// its speed, silently. The CPU's flags say what it can run, so the fallback is detectable and fixable.
public enum BLASKernel {
    /// The instruction sets OpenBLAS's x86-64 kernels are built for, lowest first.
    public enum InstructionTier: Int, Comparable, Sendable {
        case baseline, avx, avx2, avx512

        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

        /// The OpenBLAS kernel written for this tier (`OPENBLAS_CORETYPE` value), nil for the baseline.
        public var coreType: String? {
            switch self {
            case .baseline: return nil
            case .avx: return "Sandybridge"
            case .avx2: return "Haswell"
            case .avx512: return "SkylakeX"
            }
        }

        /// "AVX-512", "AVX2", ... as a sentence names the CPU.
        public var name: String {
            switch self {
            case .baseline: return "pre-AVX"
            case .avx: return "AVX"
            case .avx2: return "AVX2"
            case .avx512: return "AVX-512"
            }
        }
    }

    /// The kernel in use: OpenBLAS's core name (`openblas_get_corename()`, e.g. "Cooperlake"), or
    /// "Accelerate" on Apple platforms.
    public static var coreName: String {
        #if canImport(Accelerate)
        return "Accelerate"
        #else
        return openblas_get_corename().map { String(cString: $0) } ?? "unknown"
        #endif
    }

    /// OpenBLAS's build line, e.g. "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Cooperlake
    /// MAX_THREADS=64"; "Accelerate" on Apple platforms.
    public static var configuration: String {
        #if canImport(Accelerate)
        return "Accelerate"
        #else
        return openblas_get_config().map { String(cString: $0) } ?? "OpenBLAS"
        #endif
    }

    /// "OpenBLAS 0.3.21": the library and its version, the first two words of `configuration`.
    public static var libraryVersion: String {
        configuration.split(separator: " ").prefix(2).joined(separator: " ")
    }

    /// Only a DYNAMIC_ARCH build carries every kernel and reads `OPENBLAS_CORETYPE`.
    public static var canSwitchKernel: Bool {
        configuration.split(separator: " ").contains("DYNAMIC_ARCH")
    }

    /// The CPU's feature flags from the text of /proc/cpuinfo (its first `flags` line; every core lists the
    /// same). Empty where there is none (non-x86 CPUs name theirs `Features`).
    public static func cpuFlags(cpuinfo: String) -> Set<String> {
        for line in cpuinfo.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == "flags" else { continue }
            return Set(parts[1].split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init))
        }
        return []
    }

    /// The highest tier the CPU runs. AVX-512 needs the subsets OpenBLAS's SkylakeX kernels are compiled
    /// for (`-march=skylake-avx512`: F, BW, DQ, VL); Linux lists a flag only when the OS saves that
    /// register state too, so a listed flag is usable.
    public static func instructionTier(cpuFlags flags: Set<String>) -> InstructionTier {
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512dq", "avx512vl"]) { return .avx512 }
        if flags.isSuperset(of: ["avx2", "fma"]) { return .avx2 }
        if flags.contains("avx") { return .avx }
        return .baseline
    }

    /// The highest tier OpenBLAS 0.3.21 picks each kernel for on CPUs it recognises (driver/others/dynamic.c),
    /// by lowercased core name. A kernel below the CPU's tier is a fallback, not a choice: "Prescott" is the
    /// default for a model it does not know, and for the AVX-512 models it knows it picks SkylakeX or
    /// Cooperlake (Cooperlake on this project's Zen 4 machine), falling back to Haswell or Sandybridge only
    /// when the OS does not save the wider registers (its HASWELL_FALLBACK warning), and then Linux lists
    /// no avx512 flags either. So Haswell or Zen on a CPU listing AVX-512 is a miss too.
    static let kernelTiers: [String: InstructionTier] = [
        "unknown": .baseline, "katmai": .baseline, "coppermine": .baseline, "northwood": .baseline,
        "prescott": .baseline, "banias": .baseline, "atom": .baseline, "core2": .baseline, "penryn": .baseline,
        "dunnington": .baseline, "nehalem": .baseline, "athlon": .baseline, "opteron": .baseline,
        "opteron_sse3": .baseline, "barcelona": .baseline, "bobcat": .baseline, "nano": .baseline,
        "sandybridge": .avx, "bulldozer": .avx, "piledriver": .avx, "steamroller": .avx,
        "haswell": .avx2, "excavator": .avx2, "zen": .avx2,
        "skylakex": .avx512, "cooperlake": .avx512, "sapphirerapids": .avx512,
    ]

    /// The tier of the kernel OpenBLAS calls `coreName` (any name holding "generic" is the baseline), nil
    /// for a name not in `kernelTiers`.
    public static func instructionTier(ofKernel coreName: String) -> InstructionTier? {
        let name = coreName.lowercased()
        return name.contains("generic") ? .baseline : kernelTiers[name]
    }

    /// The `OPENBLAS_CORETYPE` to force, or nil to keep OpenBLAS's choice.
    ///
    /// Forces the kernel of the CPU's tier when OpenBLAS reported a kernel of a lower tier. Keeps OpenBLAS's
    /// choice when the user set `OPENBLAS_CORETYPE` (theirs always wins), when the CPU has no AVX, and for
    /// names not in the table (a newer OpenBLAS's own kernels, which know more than this table does).
    public static func coreTypeToForce(reportedCoreName: String, cpuFlags: Set<String>,
                                       environment: [String: String]) -> String? {
        if let userSet = environment["OPENBLAS_CORETYPE"], !userSet.trimmingCharacters(in: .whitespaces).isEmpty {
            return nil
        }
        guard let reportedTier = instructionTier(ofKernel: reportedCoreName) else { return nil }
        let cpuTier = instructionTier(cpuFlags: cpuFlags)
        return reportedTier < cpuTier ? cpuTier.coreType : nil
    }
}
